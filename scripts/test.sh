#!/usr/bin/env bash
# The README's test command: install and build (scripts/bootstrap.sh), then run every
# CUnit suite. Exits non-zero when any test fails; the last line is "N passed, N failed".
# Arguments pick suites by name (rng kernels dataset plugins model gradcheck train slurm).
# Without arguments, each fuzz target first replays its corpus (tests/fuzz/corpus/: the
# seeds and every input that once crashed it).
#
# As root (as CI runs), it first installs what only the tests need: Slurm and munge for
# the `slurm` suite's one-node cluster (scripts/slurm-local.sh), Open MPI for the mpi
# feature. Before bootstrap.sh, so that the build sees Open MPI. scripts/main.sh needs
# none of them. Not root: they are not installed and those tests say they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
test_packages=(slurm-wlm munge openmpi-bin libopenmpi-dev)
if [ "$(id -u)" -eq 0 ]; then
  missing=()
  for p in "${test_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "cnnbench: installing for the slurm and mpi tests: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A failed install is not a failed test run: the suites that need them say skipped.
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } ||
      echo "cnnbench: warning: could not install ${missing[*]}; their tests will be skipped" >&2
  fi
fi
bash scripts/bootstrap.sh
if [ $# -eq 0 ]; then
  for t in model experiment idx cifar weights; do
    ./build/tests/fuzz/fuzz-$t tests/fuzz/corpus/$t
  done
fi
exec ./build/tests/cnnbench-tests "$@"
