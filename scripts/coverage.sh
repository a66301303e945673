#!/usr/bin/env bash
# Line coverage of the whole test suite: build with gcov instrumentation into a build
# folder of its own, run every test there as scripts/test.sh does, then print the share of
# lines run per folder (core/src, core/include, each folder of plugins/) and in all.
#
#   scripts/coverage.sh [MESON-TEST-ARGUMENT...]    e.g. `scripts/coverage.sh sweep check`
#
# The build: build-coverage/ in the source tree (CNB_COVERAGE_BUILD names another),
# -Db_coverage=true --buildtype=debugoptimized (-O2). CNB_SOURCE measures another checkout
# (another revision, for a before and after) with this script's helpers; with
# CNB_COVERAGE_BUILD outside it, nothing is written into that tree (gcov's own files go
# into the build folder). Each run starts from zero counts. Forked children count too:
# they end through cnb_child_exit(), which writes their counters first (core/src/child.h).
# The tests run with their timeouts tripled (instrumented code is slower;
# CNB_COVERAGE_TIMEOUTS sets the factor).
#
# Installs gcovr (Debian) with what the build needs, as scripts/bootstrap.sh does: as
# root; otherwise it prints the exact apt-get command. Writes BUILD/coverage.json (per
# file) and BUILD/coverage.txt (the table). Exits 1 when a test failed (the table is still
# printed: what ran, counted).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${CNB_SOURCE:-$here/..}" && pwd)
build=${CNB_COVERAGE_BUILD:-$src/build-coverage}

source "$here/packages.sh"
if [ "$(id -u)" -eq 0 ]; then # the slurm and mpi suites, as scripts/test.sh
  need_packages "coverage.sh (for the slurm and mpi tests)" "${test_packages[@]}" ||
    echo "coverage.sh: warning: could not install ${test_packages[*]}; their tests will be skipped" >&2
fi
need_packages coverage.sh "${build_packages[@]}" gcovr

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" -Db_coverage=true --buildtype=debugoptimized >/dev/null
fi
meson compile -C "$build" >/dev/null
find "$build" -name '*.gcda' -delete
# the notes of objects whose source is gone (a file removed since the last build): gcovr
# would look for that source
find "$build" -name '*.gcno' | while read -r note; do
  [ -e "${note%.gcno}.o" ] || rm -f "$note"
done
rm -f "$build/meson-logs/testlog.json"

status=0
meson test -C "$build" --no-rebuild --print-errorlogs \
  --timeout-multiplier "${CNB_COVERAGE_TIMEOUTS:-3}" "$@" || status=$?
python3 "$here/test-summary.py" "$build" || status=1

# gcov runs in the build folder (--object-directory), so that its files land there and
# not in the source tree
gcovr --root "$src" --object-directory "$build" --filter "$src/core/" \
  --filter "$src/plugins/" --json-summary "$build/coverage.json" "$build" >/dev/null
python3 - "$build/coverage.json" <<'EOF' | tee "$build/coverage.txt"
import json, sys
from collections import defaultdict

# Lines run / lines with code, per folder: core/include counts its subfolders as one.
lines = defaultdict(lambda: [0, 0])
for f in json.load(open(sys.argv[1]))["files"]:
    name = f["filename"]
    folder = "core/include" if name.startswith("core/include/") else name.rsplit("/", 1)[0]
    for key in (folder, "total"):
        lines[key][0] += f["line_covered"]
        lines[key][1] += f["line_total"]
print(f"\n{'line coverage':<26} {'lines run':>10} {'of':>7} {'share':>7}")
for folder in sorted(k for k in lines if k != "total") + ["total"]:
    run, total = lines[folder]
    print(f"{folder:<26} {run:>10} {total:>7} {100.0 * run / max(total, 1):6.1f}%")
EOF
exit "$status"
