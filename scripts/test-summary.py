#!/usr/bin/env python3
"""The totals of the last `meson test` run in a build folder (scripts/test.sh and
scripts/coverage.sh): BUILD/meson-logs/testlog.json holds each test's result and output.

    scripts/test-summary.py BUILD

One line per test: a CUnit program's own count (its last "N passed, N failed" line) or,
for any other test (a fuzz corpus replay), its result; then the tests that failed, by
name; then, as the last line, "N passed, N failed" over the CUnit tests of every suite,
each other test counting as one. A CUnit program that ended before its count (a crash, a
timeout) counts as one failed test, and one that failed with no failed test in its count
(a suite's set-up refused) as one more. Exit status: 0 when every test passed, 1 when one
failed or none ran.
"""
import json
import re
import sys

COUNT = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)
OK = ("OK", "EXPECTEDFAIL", "SKIP")


def main(build):
    log = f"{build}/meson-logs/testlog.json"
    try:
        with open(log, encoding="utf-8") as f:
            runs = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        runs = []
    passed = failed = 0
    bad = []
    for t in runs:
        name = t["name"].split(" / ")[-1]
        counts = COUNT.findall(t.get("stdout") or "")
        ok = t["result"] in OK
        if counts:
            p, f = map(int, counts[-1])
            said = f"{p} passed, {f} failed"
            if not ok and f == 0:
                f = 1
                said += f", yet {t['result']}"
        else:
            p, f = (1, 0) if ok else (0, 1)
            said = t["result"] if ok else f"{t['result']} before its count"
        passed += p
        failed += f
        if f:
            bad.append(f"{name} ({t['result']}, exit status {t.get('returncode')})")
        print(f"  {name:<22} {said:<28} {t.get('duration', 0):7.1f} s")
    if not runs:
        print(f"no test ran ({log} is missing: see meson's message above)")
    if bad:
        print(f"FAILED: {', '.join(bad)}; their output: {build}/meson-logs/testlog.txt")
    print(f"{passed} passed, {failed} failed")
    return 0 if runs and not bad else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/test-summary.py BUILD_DIR")
    sys.exit(main(sys.argv[1]))
