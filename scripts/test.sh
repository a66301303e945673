#!/usr/bin/env bash
# The README's test command: install and build (scripts/bootstrap.sh), then run every
# CUnit suite. Exits non-zero when any test fails; the last line is "N passed, N failed".
# Arguments pick suites by name (rng kernels dataset plugins model gradcheck train).
# Without arguments, each fuzz target first replays its corpus (tests/fuzz/corpus/: the
# seeds and every input that once crashed it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ $# -eq 0 ]; then
  for t in model experiment idx cifar weights; do
    ./build/tests/fuzz/fuzz-$t tests/fuzz/corpus/$t
  done
fi
exec ./build/tests/cnnbench-tests "$@"
