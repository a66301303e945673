# Sourced by the scripts that install what they need from Debian (bootstrap.sh, test.sh,
# fuzz.sh, coverage.sh, peers.sh): the package lists, and need_packages.

# What building and running cnnbench needs (scripts/bootstrap.sh).
build_packages=(gcc pkg-config meson ninja-build libinih-dev zlib1g-dev libcunit1-dev
                libgsl-dev libopenblas-dev libdnnl-dev gnuplot-nox dataset-fashion-mnist
                libturbojpeg0-dev libpng-dev)
# What only the tests need: Slurm and munge for the slurm suite's one-node cluster, Open
# MPI for the mpi feature (scripts/test.sh installs them as root).
test_packages=(slurm-wlm munge openmpi-bin libopenmpi-dev)
# What the optional peers of the backend-speed bench need (scripts/peers.sh): PyTorch and
# jemalloc for scripts/pytorch-peer.py (whose --export-onnx the ONNX Runtime peer uses
# too); Node.js and npm for scripts/onnxruntime-peer.mjs, unless node and npm are there.
peer_packages=(python3-torch libjemalloc2)
node_packages=(nodejs npm)

# need_packages WHO PKG...: install those of the Debian packages PKG that are missing
# (apt-get, as root); not root, print the exact command and return 1. WHO starts every
# message. Returns 1 when the install fails.
need_packages() {
  local who=$1 p missing=()
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "$who: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who: not root; run this, then try again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
