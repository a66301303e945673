#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the `slurm` test suite and for trying
# `cnnbench run EXP --launcher slurm` without a real cluster:
#
#   scripts/slurm-local.sh start   start munged, slurmctld and slurmd (if not running) and
#                                  wait until the node is idle; prints the SLURM_CONF line
#   scripts/slurm-local.sh stop    cancel every job, stop the three daemons, wait for them
#
# Needs root and Debian's slurm-wlm and munge (apt-get install -y --no-install-recommends
# slurm-wlm munge). Everything lives under one run folder, $CNB_SLURM_RUN (default
# /tmp/cnnbench-slurm): the config made from tests/slurm/slurm.conf.in, a munge key and
# socket of its own, state, spool, logs and pid files; nothing in /etc is read or changed.
# The client commands find the cluster through SLURM_CONF=$CNB_SLURM_RUN/slurm.conf.
# Ports: $CNB_SLURM_PORT (slurmctld, default 6817) and the next one (slurmd).
# $CNB_SLURM_MAX_ARRAY sets MaxArraySize (default 1001, Slurm's own; the tests use less).
# Exit status: 0 done, 1 a daemon did not come up (its log is printed), 2 usage or missing
# packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run=${CNB_SLURM_RUN:-/tmp/cnnbench-slurm}
port=${CNB_SLURM_PORT:-6817}
conf=$run/slurm.conf
export SLURM_CONF=$conf

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: $*" >&2; exit "${2:-1}"; }

alive() { # pid file -> 0 when its process runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# The node's state as sinfo says it ("idle", "mixed", "down*", ...), or nothing.
node_state() {
  timeout 10 sinfo -h -N -n "$host" -o %T 2>/dev/null | head -n 1 || true
}

start() {
  [ "$(id -u)" -eq 0 ] || die "start needs root (the daemons run as root here)" 2
  for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || PATH=$PATH:/usr/sbin command -v "$cmd" >/dev/null ||
      die "$cmd not found; install it: apt-get install -y --no-install-recommends slurm-wlm munge" 2
  done
  export PATH=$PATH:/usr/sbin
  mkdir -p "$run"/{munge,state,spool,log}
  chmod 700 "$run/munge"
  if ! alive "$run/munge/munged.pid"; then
    [ -s "$run/munge/munge.key" ] ||
      { dd if=/dev/urandom of="$run/munge/munge.key" bs=1024 count=1 status=none &&
        chmod 600 "$run/munge/munge.key"; }
    munged --socket="$run/munge/munge.socket" --key-file="$run/munge/munge.key" \
      --pid-file="$run/munge/munged.pid" --log-file="$run/log/munged.log" \
      --seed-file="$run/munge/munged.seed" --force ||
      { tail -n 20 "$run/log/munged.log" >&2 || true; die "munged did not start"; }
  fi
  # A safe amount of memory to offer: 80% of this machine's, so the node is never drained
  # for having less than it claims.
  local mem
  mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
  sed -e "s|@RUN@|$run|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$(nproc)|g" \
    -e "s|@MEMORY@|$mem|g" -e "s|@MAX_ARRAY@|${CNB_SLURM_MAX_ARRAY:-1001}|g" -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" \
    "$here/tests/slurm/slurm.conf.in" >"$conf.tmp"
  mv "$conf.tmp" "$conf"
  if ! alive "$run/slurmctld.pid"; then
    # -c: no jobs or node states from an earlier cluster in this folder
    slurmctld -c -f "$conf" ||
      { tail -n 20 "$run/log/slurmctld.log" >&2 || true; die "slurmctld did not start"; }
  fi
  if ! alive "$run/slurmd.pid"; then
    slurmd -f "$conf" ||
      { tail -n 20 "$run/log/slurmd.log" >&2 || true; die "slurmd did not start"; }
  fi
  local state=""
  for _ in $(seq 1 60); do
    state=$(node_state)
    case "$state" in
      idle | mixed | allocated) break ;;
      down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  case "$state" in
    idle | mixed | allocated) ;;
    *)
      tail -n 10 "$run/log/slurmctld.log" "$run/log/slurmd.log" >&2 || true
      die "node $host is '${state:-unknown}', not idle, after 30 s (logs above, in $run/log)" ;;
  esac
  say "node $host is $state ($(nproc) CPUs, ${mem} MiB); for the client commands:"
  echo "export SLURM_CONF=$conf"
}

stop_pid() { # name, pid file: TERM, then KILL after 10 s
  alive "$2" || { rm -f "$2"; return 0; }
  local pid
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }
    sleep 0.1
  done
  say "$1 (pid $pid) ignored TERM for 10 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$2"
}

stop() {
  [ -d "$run" ] || { say "nothing to stop ($run does not exist)"; return 0; }
  export PATH=$PATH:/usr/sbin
  # Jobs first, while slurmctld and slurmd still run, so that no job step outlives them.
  if alive "$run/slurmctld.pid" && [ -f "$conf" ]; then
    timeout 10 scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -z "$(timeout 10 squeue -h -o %A 2>/dev/null || true)" ] && break
      sleep 0.2
    done
  fi
  stop_pid slurmd "$run/slurmd.pid"
  stop_pid slurmctld "$run/slurmctld.pid"
  stop_pid munged "$run/munge/munged.pid"
  say "stopped"
}

host=$(hostname -s)
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/slurm-local.sh start|stop" >&2; exit 2 ;;
esac
