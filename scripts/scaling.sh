#!/usr/bin/env bash
# Data-parallel scaling on this machine: experiments/scaling.ini once without mpirun (1
# rank) and once under `mpirun -np N` for each N given (default: 2), each run adding its
# rank count's rows to results/scaling/ (scaling.csv, report.md, plots). Needs a build
# with the meson feature mpi (Debian openmpi-bin and libopenmpi-dev, then
# scripts/bootstrap.sh). As root, mpirun needs --allow-run-as-root; extra arguments after
# `--` go to cnnbench (--set bench.min_time=1).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do ranks+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#ranks[@]} -gt 0 ] || ranks=(2)
command -v mpirun >/dev/null || { echo "scaling.sh: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
grep -q dist_mpi build/build.ninja 2>/dev/null ||
  { echo "scaling.sh: build/ has no MPI; run scripts/bootstrap.sh after installing Open MPI" >&2; exit 2; }
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
./build/core/cnnbench run experiments/scaling.ini "$@"
for n in "${ranks[@]}"; do
  # mpirun's default binding (each rank to a core when there are at most 2) is right for
  # ranks of 1 thread; a group of ranks x threads beyond the node's CPUs is skipped, and
  # for ranks of T threads give --map-by slot:PE=T yourself
  mpirun "${root[@]}" -np "$n" ./build/core/cnnbench run experiments/scaling.ini "$@"
done
