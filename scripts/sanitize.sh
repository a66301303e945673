#!/usr/bin/env bash
# The sanitizer stage of CI: build everything under AddressSanitizer and UBSan (gcc; no
# package beyond scripts/bootstrap.sh's) into build-asan/ (CNB_ASAN_BUILD), then run
#   - every fuzz target's corpus (tests/fuzz/corpus/: the seeds and every input that
#     once crashed a target) through its replay program, and
#   - the CUnit suites that finish in a few minutes under the sanitizers (arguments, or
#     the default list below; the full suite runs unsanitized in scripts/test.sh),
# with leak checking on and the first report fatal. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${CNB_ASAN_BUILD:-build-asan}
# Left out: train (real Fashion-MNIST training, ~10x slower instrumented), agreement
# (whole networks on every backend), pool (thread-pool stress, 2 min instrumented), check
# (its fixtures crash and overrun buffers on purpose; a sanitizer report would replace
# the harness's own verdict).
suites=(rng kernels dataset augment plugins model gradcheck sweep bench claims csv)
# conformance runs apart, without leak checking: at its exit LeakSanitizer's tracer
# crashes (SIGSEGV) while it stops the backends' worker threads.
unleaked=(conformance)
if [ $# -gt 0 ]; then
  suites=("$@")
  unleaked=()
fi

if [ ! -f "$build/build.ninja" ]; then
  # gcc leaves float-cast-overflow out of -fsanitize=undefined: asked for here
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fsanitize=float-cast-overflow --buildtype=debugoptimized > /dev/null
fi
ninja -C "$build" > /dev/null

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=0:max_allocation_size_mb=4096
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

for corpus in tests/fuzz/corpus/*/; do # every target's replay, as its corpus test does
  t=$(basename "$corpus")
  "$build/tests/fuzz/fuzz-$t" "$corpus"
done
# The fixture backend that crashes on purpose (sweep: "crashed with signal 11") must die
# by its signal: UBSan lets its NULL store through (suppressed) and ASan leaves SIGSEGV
# alone (handle_segv=0) instead of exiting 1 through a report.
printf 'null:misbehaving.c\nnull:fixture-crash.so\n' > "$build/ubsan-fixtures.supp"
# A cnb_layer or cnb_kernel of the wrong struct_size is refused without a call to its
# destroy (whose place in the struct is then unknown), so what the fixture plugin
# allocated for it stays allocated: by design, and only in that test.
printf 'leak:test_struct_sizes\n' > "$build/lsan-fixtures.supp"
run_suites() { # log leak-check suite...
  local log=$1 leaks=$2
  shift 2
  ASAN_OPTIONS=$ASAN_OPTIONS:handle_segv=0:detect_leaks=$leaks \
    LSAN_OPTIONS=suppressions=$build/lsan-fixtures.supp:print_suppressions=0 \
    UBSAN_OPTIONS=$UBSAN_OPTIONS:suppressions=$build/ubsan-fixtures.supp \
    "$build/tests/cnnbench-tests" "$@" > "$log" 2>&1 || {
    tail -40 "$log"
    echo "sanitize: $* failed under ASan + UBSan (log: $log)" >&2
    exit 1
  }
  echo "sanitize: $* under ASan + UBSan$([ "$leaks" = 1 ] || echo ', leaks not checked'):" \
    "$(tail -1 "$log")"
}
run_suites "$build/sanitized-suites.log" 1 "${suites[@]}"
[ ${#unleaked[@]} -eq 0 ] || run_suites "$build/sanitized-unleaked.log" 0 "${unleaked[@]}"
