#!/usr/bin/env bash
# The README's main command: install and build (scripts/bootstrap.sh), then train and
# validate LeNet-5 on Fashion-MNIST twice, side by side on the two cores: the seed's
# network (sigmoid, average pooling) and the modern one (ReLU, max pooling). Writes
# results/lenet5-fashion/<run>/ per run, then results/lenet5-fashion/report.md and
# learning-curves.png comparing them.
#
#   scripts/main.sh            short profile: 3 epochs (a few minutes on 2 cores)
#   scripts/main.sh --full     the full 10 epochs
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=3
case "${1:-}" in
  --full) epochs=10 ;;
  "") ;;
  *) echo "usage: scripts/main.sh [--full]" >&2; exit 2 ;;
esac
bash scripts/bootstrap.sh

exp=experiments/lenet5-fashion.ini
out=results/lenet5-fashion
mkdir -p "$out"
pids=()
for variant in "sigmoid avg" "relu max"; do
  set -- $variant
  log="$out/log-$1-$2.txt"
  echo "training LeNet-5 act=$1 pool=$2 for $epochs epochs (log: $log)"
  ./build/core/cnnbench run "$exp" -q --set train.epochs="$epochs" \
      --set vars.act="$1" --set vars.pool="$2" >"$log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if [ $status -ne 0 ]; then
  echo "a run failed; see $out/log-*.txt" >&2
  tail -n 5 "$out"/log-*.txt >&2
  exit 1
fi
cat "$out"/log-*.txt
bash scripts/report.sh "$out"
