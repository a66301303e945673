#!/usr/bin/env bash
# Install what cnnbench needs from Debian (as root; otherwise print the exact command),
# then configure and build with meson into build/. Safe to run again: it only does what
# is missing. Used by scripts/main.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc pkg-config meson ninja-build libinih-dev zlib1g-dev libcunit1-dev libgsl-dev
          libopenblas-dev libdnnl-dev gnuplot-nox dataset-fashion-mnist
          libturbojpeg0-dev libpng-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "cnnbench: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "cnnbench: not root; run this, then try again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release
elif pkg-config --exists ompi-c 2>/dev/null && ! grep -q dist_mpi build/build.ninja &&
     ! grep -q '"name": "mpi", "value": "disabled"' build/meson-info/intro-buildoptions.json; then
  # Open MPI was installed after build/ was configured (scripts/test.sh installs it for the
  # mpi suite): configure again, so that the feature mpi (auto) finds it.
  meson setup --reconfigure build
fi
meson compile -C build
