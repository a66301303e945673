#!/usr/bin/env bash
# report.sh RESULTS_DIR - tabulate every run under RESULTS_DIR (its final.csv and
# metrics.csv) into RESULTS_DIR/report.md and draw the learning curves with gnuplot
# (RESULTS_DIR/learning-curves.{gp,png}; `gnuplot learning-curves.gp` redraws it).
set -euo pipefail
dir=${1:?usage: scripts/report.sh RESULTS_DIR}
report="$dir/report.md"
tmp="$report.tmp"
{
  echo "# $(basename "$dir")"
  echo
  echo "| run | epochs | test acc | best test acc | train acc (eval) | train/test gap | s/epoch | img/s | peak MiB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for run in "$dir"/*/; do
    [ -f "$run/final.csv" ] || continue
    tail -n 1 "$run/final.csv" | awk -F, -v r="$(basename "$run")" \
      '{printf "| %s | %d | %.4f | %.4f | %.4f | %+.4f | %.1f | %.0f | %.0f |\n", r, $1, $2, $3, $5, $6, $7, $8, $9}'
  done
  echo
  echo "Test accuracy on the 10,000 test images after the last epoch; train accuracy measured"
  echo "in evaluation mode on the first 10,000 training images; gap = train - test."
  echo
  echo "![learning curves](learning-curves.png)"
} >"$tmp"
mv "$tmp" "$report"

gp="$dir/learning-curves.gp"
{
  echo "# redraw with: gnuplot learning-curves.gp (from this folder)"
  echo "set terminal pngcairo size 900,540 font ',10'"
  echo "set output 'learning-curves.png'"
  echo "set datafile separator ','"
  echo "set key bottom right"
  echo "set grid"
  echo "set xlabel 'epoch'"
  echo "set ylabel 'accuracy'"
  echo "set title 'LeNet-5 on Fashion-MNIST: test (solid) and train (dashed) accuracy'"
  printf "plot "
  sep=""
  i=1
  for run in "$dir"/*/; do
    [ -f "$run/metrics.csv" ] || continue
    name=$(basename "$run")
    printf "%s'%s/metrics.csv' using 1:8 skip 1 with linespoints lc %d title '%s test', '%s/metrics.csv' using 1:6 skip 1 with lines dt 2 lc %d title '%s train'" \
      "$sep" "$name" $i "$name" "$name" $i "$name"
    sep=", "
    i=$((i + 1))
  done
  echo
} >"$gp"
if ! (cd "$dir" && gnuplot learning-curves.gp); then
  echo "gnuplot failed on $gp" >&2
  exit 1
fi
echo "report: $report"
echo "plot:   $dir/learning-curves.png"
