#!/usr/bin/env bash
# The README's test command: install and build (scripts/bootstrap.sh), then run every
# CUnit suite. Exits non-zero when any test fails; the last line is "N passed, N failed".
# Arguments pick suites by name (rng kernels dataset plugins model gradcheck train).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec ./build/tests/cnnbench-tests "$@"
