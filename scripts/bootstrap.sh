#!/usr/bin/env bash
# Install what cnnbench needs from Debian (as root; otherwise print the exact command),
# then configure and build with meson into build/. Safe to run again: it only does what
# is missing. Used by scripts/main.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/packages.sh
need_packages cnnbench "${build_packages[@]}"

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release
elif pkg-config --exists ompi-c 2>/dev/null && ! grep -q dist_mpi build/build.ninja &&
     ! grep -q '"name": "mpi", "value": "disabled"' build/meson-info/intro-buildoptions.json; then
  # Open MPI was installed after build/ was configured (scripts/test.sh installs it for the
  # mpi suite): configure again, so that the feature mpi (auto) finds it.
  meson setup --reconfigure build
fi
meson compile -C build
