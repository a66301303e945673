#!/usr/bin/env bash
# What a plugin author does, end to end, against an SDK installed in a temporary prefix:
# install cnnbench there, scaffold a backend plugin and build it out of tree with its
# five-line meson.build (pkg-config cnnbench-plugin), check it, time it in LeNet-5 with
# `cnnbench bench`, then scaffold a layer plugin and build it with one cc line, and check
# that. Run by the test suite ("check"); by hand: scripts/sdk-check.sh [WORK_DIR].
# The last line is "sdk-check: passed" on success; any failing step stops it non-zero.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix
step() { printf '\nsdk-check: %s\n' "$*"; }

step "install cnnbench into $prefix"
meson setup "$work/sdk-build" "$src" --prefix "$prefix" --libdir lib --buildtype=release \
  -Dtests=false >"$work/sdk-setup.log" || { cat "$work/sdk-setup.log"; exit 1; }
meson install -C "$work/sdk-build" --quiet >"$work/sdk-install.log" ||
  { cat "$work/sdk-install.log"; exit 1; }
export PATH="$prefix/bin:$PATH" PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
unset CNB_PLUGIN_PATH
cd "$work"

step "scaffold and build a backend plugin out of tree (meson)"
cnnbench-new-plugin myrelu
meson setup myrelu/build myrelu >/dev/null
meson compile -C myrelu/build >/dev/null

step "check it"
cnnbench check myrelu/build/myrelu.so --threads 1

step "time it in LeNet-5 beside naive"
cnnbench bench "$src/experiments/models/lenet5.ini" --plugin myrelu/build/myrelu.so \
  --set bench.backends=naive,myrelu --set "bench.vars=act=relu pool=max" \
  --set bench.layers=no --set bench.min_reps=3 --set bench.min_time=0.2 \
  --set bench.warmup=1 --set experiment.results="$work/results"
grep -q '^| myrelu |' "$work/results/bench-lenet5/report.md"

step "scaffold a layer plugin and build it with one cc line"
cnnbench-new-plugin --layer myscale
cc -std=c11 -O2 -fPIC -shared -fvisibility=hidden $(pkg-config --cflags cnnbench-plugin) \
  myscale/myscale.c -o myscale.so
cnnbench check ./myscale.so --set factor=3 --no-speed

step "passed"
