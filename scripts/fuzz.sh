#!/usr/bin/env bash
# Run the libFuzzer targets of tests/fuzz for as long as asked, one after another.
#
#   scripts/fuzz.sh TARGET|all SECONDS [LIBFUZZER-OPTION...]
#
# TARGET: model, experiment, idx, cifar, weights or image; SECONDS: per target. Builds
# build-fuzz/ (clang, ASan + UBSan, -Dfuzz=enabled; installing clang and
# libclang-rt-14-dev when missing, as scripts/bootstrap.sh does) unless CNB_FUZZ_BUILD
# names another build folder. Each target starts from its seeds, tests/fuzz/corpus/TARGET/,
# and the inputs it finds are kept in fuzz-corpus/TARGET/ (CNB_FUZZ_CORPUS; ignored by
# git), so the next run starts where this one stopped. A crash stops that target: its
# input is written to fuzz-crashes/TARGET/ and the script exits 1 after the others ran;
# copy the input into tests/fuzz/corpus/TARGET/crash-WHAT once fixed, so that the
# corpus test replays it from then on. Prints one line per target: executions and crashes.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=() # one per folder of tests/fuzz/corpus, as tests/fuzz/meson.build lists them
for corpus in tests/fuzz/corpus/*/; do targets+=("$(basename "$corpus")"); done
if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS [LIBFUZZER-OPTION...]  (TARGET: ${targets[*]})" >&2
  exit 2
fi
want=$1 seconds=$2
shift 2
if [ "$want" != all ]; then
  [[ " ${targets[*]} " == *" $want "* ]] || {
    echo "fuzz.sh: no target '$want'; the targets are: ${targets[*]}" >&2; exit 2; }
  targets=("$want")
fi

build=${CNB_FUZZ_BUILD:-build-fuzz}
grown=${CNB_FUZZ_CORPUS:-fuzz-corpus}
crashes=${CNB_FUZZ_CRASHES:-fuzz-crashes}

# clang's libFuzzer and sanitizer runtimes (Debian bookworm: clang 14)
source scripts/packages.sh
need_packages fuzz.sh clang libclang-rt-14-dev

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=enabled -Dtests=false -Dopenblas=disabled \
    -Donednn=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized > /dev/null
fi
ninja -C "$build" > /dev/null

# Inputs stay small: a model or experiment file of 4 KB, a few CIFAR records.
declare -A max_len=([model]=4096 [experiment]=4096 [idx]=4096 [cifar]=16384 [weights]=1024
                   [image]=8192)
declare -A dict=([model]=tests/fuzz/ini.dict [experiment]=tests/fuzz/ini.dict)
# A small quarantine: freed memory is reused while still hot (6x the executions of the
# default 256 MB); a use after free within one input is still caught.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:quarantine_size_mb=8}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
total=0
for t in "${targets[@]}"; do
  mkdir -p "$grown/$t" "$crashes/$t"
  log="$crashes/$t/last-run.log"
  opts=(-max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$crashes/$t/")
  [ -n "${dict[$t]:-}" ] && opts+=(-dict="${dict[$t]}")
  rc=0
  "$build/tests/fuzz/fuzz-$t" "${opts[@]}" "$@" "$grown/$t" "tests/fuzz/corpus/$t" \
    > "$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  total=$((total + execs))
  corpus=$(find "$grown/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz-$t: $execs executions in ${seconds} s, 0 crashes (corpus $corpus inputs)"
  else
    failed=1
    echo "fuzz-$t: $execs executions, 1 crash (exit $rc): $(grep -m1 -E 'ERROR|does not hold|runtime error' "$log" || true)"
    echo "  input: $(sed -n 's/.*Test unit written to //p' "$log" | tail -1); log: $log"
  fi
done
echo "fuzz: $total executions in all"
exit $failed
