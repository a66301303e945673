#!/usr/bin/env bash
# The README's test command: install and build (scripts/bootstrap.sh), then run every test
# with `meson test` (tests/meson.build): each CUnit suite as a test of its own, as many at
# once as the machine has cores, the direct backend's plain-C path (direct-scalar), and
# each fuzz target's corpus (tests/fuzz/corpus/: the seeds and every input that once
# crashed it). Exits non-zero when any test fails; the lines before the last give each
# test's count and name the ones that failed, and the last is "N passed, N failed" over
# the CUnit tests of every suite (scripts/test-summary.py). Arguments go to meson test:
# test names (each suite's, as tests/test_main.c names it; direct-scalar;
# fuzz-corpus-model ...; `meson test -C build --list` lists them) or options (--suite
# unit, the quick ones; --timeout-multiplier 3 on a slow machine).
# Every test's output: build/meson-logs/testlog.txt.
#
# As root (as CI runs), it first installs what only the tests need: Slurm and munge for
# the `slurm` suite's one-node cluster (scripts/slurm-local.sh), Open MPI for the mpi
# feature. Before bootstrap.sh, so that the build sees Open MPI. scripts/main.sh needs
# none of them. Not root: they are not installed and those tests say they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/packages.sh
if [ "$(id -u)" -eq 0 ]; then
  # A failed install is not a failed test run: the suites that need them say skipped.
  need_packages "cnnbench (for the slurm and mpi tests)" "${test_packages[@]}" ||
    echo "cnnbench: warning: could not install ${test_packages[*]}; their tests will be skipped" >&2
fi
bash scripts/bootstrap.sh
rm -f build/meson-logs/testlog.json # the totals are this run's alone
status=0
meson test -C build --no-rebuild --print-errorlogs "$@" || status=$?
python3 scripts/test-summary.py build || status=1
exit "$status"
