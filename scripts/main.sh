#!/usr/bin/env bash
# The README's main command: install what is missing and build (scripts/bootstrap.sh),
# then run the LeNet-5 ablation on Fashion-MNIST (experiments/lenet5-ablation.ini):
# pooling {avg, max} x activation {sigmoid, relu} x 3 seeds, two runs at a time on the
# two cores, and write its report, tables and plots under results/lenet5-ablation/
# (results/lenet5-ablation-quick/ with --quick).
#
#   scripts/main.sh           the full experiment (10 epochs; about 4 minutes on 2 cores)
#   scripts/main.sh --quick   its declared quick profile (4 epochs; about 2 minutes)
#
# Finished runs are kept: running it again resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
out=results/lenet5-ablation
case "${1:-}" in
  --quick) profile=(--profile quick) out=results/lenet5-ablation-quick ;;
  "") ;;
  *) echo "usage: scripts/main.sh [--quick]" >&2; exit 2 ;;
esac
bash scripts/bootstrap.sh
./build/core/cnnbench run experiments/lenet5-ablation.ini "${profile[@]}"
echo
echo "open $out/report.md (tables) and $out/*.png (plots)"
