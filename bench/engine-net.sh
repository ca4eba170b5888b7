#!/usr/bin/env bash
# What networking adds to a container run: `berth run --rm IMAGE true`
# with --network none and with the default bridge, beside `podman run
# --rm` with --network none and with its default bridge network, in the
# same interleaved rounds, with the ratios against the networking issue's
# target (berth-bridge at most 1.30x berth-none) and berth-bridge /
# podman-bridge.
#
# berth: a berthd of its own (data and exec roots on tmpfs, a default
# bridge of its own name so that the host's berth0 is never touched), the
# shared busybox image loaded offline from the docker-archive the shared
# fixtures build (`berth load`). podman: its storage as the shared
# scripts keep it (../shared/bench/lib.sh), crun. Interleaved rounds:
# ILOOP_N sequential runs of each tool in turn, the order rotating, so
# that the load of a shared host favours none; the figure to read first
# is the median over the rounds of the ratio taken within each round.
# Then, where perf is installed, a process timeline of berth's bridge
# runs (which CNI plugins run on the run's way, and when). Needs root.
# Not part of `make test`.
#
#   sudo bench/engine-net.sh
#   sudo ROUNDS=15 ILOOP_N=5 bench/engine-net.sh
#   sudo BERTH_ALT="before=/path/to/old/bin" bench/engine-net.sh
#
# Environment: BERTH_SHARED_BENCH (default ../shared/bench beside the
# checkout), BERTH_BIN (a directory with berth, berthd, berth-shim,
# berth-runtime and cni/; default: `make build` and bin/), ROUNDS (9),
# ILOOP_N (5), WARM (3 untimed runs of each tool first), PHASE_RUNS (10),
# RUN_DIR (default /dev/shm/berth-bench-net, tmpfs), BERTHD_ARGS (extra
# berthd flags, e.g. --network-pool 0), BERTH_ALT="NAME=DIR ..." (other
# berth builds, each with a berthd and a bridge of its own, in the same
# rounds: before and after a change), BERTH_BENCH_LOG.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BERTH_SHARED_BENCH:-$REPO/../shared/bench}
SHARED=$(cd "$SHARED" && pwd) || { echo "error: no shared bench scripts at $SHARED" >&2; exit 1; }
# shellcheck source=/dev/null
. "$SHARED/lib.sh"
# shellcheck source=bench/rounds.sh
. "$REPO/bench/rounds.sh"
need_root

# crun 1.8 refuses this hybrid host while cgroup2 holds a controller: run
# in the shared scripts' private mount namespace (cgroup v1 view).
mask_unified_cgroup "$@"

cd "$REPO"
if [ -z "${BERTH_BIN:-}" ]; then
  echo "== make build" >&2
  make -s build >&2
  BERTH_BIN=$REPO/bin
fi
BERTH_BIN=$(cd "$BERTH_BIN" && pwd)
for b in berth berthd berth-shim berth-runtime cni/bridge cni/host-local; do
  [ -x "$BERTH_BIN/$b" ] || die "no $b in $BERTH_BIN"
done
[ -f "$BUSYBOX_DOCKER_ARCHIVE" ] || SKIP_BIG=1 SKIP_APT=${SKIP_APT:-1} "$SHARED/setup-anchors.sh" >&2
[ -f "$BUSYBOX_DOCKER_ARCHIVE" ] || die "no $BUSYBOX_DOCKER_ARCHIVE (run $SHARED/setup-anchors.sh)"

mkdir -p "$BBRUN"
LOG=${BERTH_BENCH_LOG:-$BBRUN/berth-engine-net.log}
: >"$LOG"
RD=${RUN_DIR:-/dev/shm/berth-bench-net}
IMG=$BUSYBOX_IMG

# Each berth build: a berthd under $RD/NAME with the bridge bbnN.
declare -A BIN PID BRIDGE
NAMES=(berth)
BIN[berth]=$BERTH_BIN
for a in ${BERTH_ALT:-}; do
  n=${a%%=*}
  [ -x "${a#*=}/berthd" ] || die "BERTH_ALT: no berthd in ${a#*=}"
  BIN[$n]=$(cd "${a#*=}" && pwd)
  NAMES+=("$n")
done
cli() { echo "${BIN[$1]}/berth" -H "unix://$RD/$1/berthd.sock"; }
berthd_start() { # berthd_start NAME INDEX
  local d=$RD/$1
  mkdir -p "$d"
  [ "$(stat -f -c %T "$d")" = tmpfs ] || echo "warning: $d is not tmpfs" >&2
  BRIDGE[$1]=bbn$2
  # shellcheck disable=SC2086
  "${BIN[$1]}/berthd" --data-root "$d/data" --exec-root "$d/run" -H "unix://$d/berthd.sock" \
    --pidfile "$d/berthd.pid" --bridge "${BRIDGE[$1]}" ${BERTHD_ARGS:-} >"$d/berthd.log" 2>&1 &
  PID[$1]=$!
  for _ in $(seq 200); do $(cli "$1") version >/dev/null 2>&1 && break; sleep 0.05; done
  $(cli "$1") version >/dev/null 2>&1 || die "berthd of ${BIN[$1]} did not start (see $d/berthd.log)"
  $(cli "$1") load -q -i "$BUSYBOX_DOCKER_ARCHIVE" >/dev/null || die "berth load failed (see $d/berthd.log)"
}
berthd_stop() { # berthd_stop NAME: its containers, berthd, then its bridge
  local n=$1
  [ -n "${PID[$n]:-}" ] || return 0
  $(cli "$n") ps -aq 2>/dev/null | xargs -r $(cli "$n") rm -f >/dev/null 2>&1 || true
  kill "${PID[$n]}" 2>/dev/null || true; wait "${PID[$n]}" 2>/dev/null || true
  PID[$n]=
  # The default bridge outlives berthd, as docker0 outlives dockerd: its
  # bridge, unreachable route and nftables chains and mappings go here
  # (as test/e2e's removeBridgeHostSide).
  local br=${BRIDGE[$n]} subnet id c m
  subnet=$(cat "$RD/$n/subnet" 2>/dev/null || true); id=$(cat "$RD/$n/netid" 2>/dev/null || true)
  ip link del dev "$br" 2>/dev/null || true
  [ -n "$subnet" ] && { ip route del unreachable "$subnet" metric 4096 2>/dev/null || true; }
  if [ ${#id} -ge 12 ] && nft list table inet berth >/dev/null 2>&1; then
    for m in fwd_in fwd_out local_in bridges; do nft delete element inet berth $m "{ \"$br\" }" 2>/dev/null || true; done
    [ -n "$subnet" ] && { nft delete element inet berth masq4 "{ $subnet }" 2>/dev/null || true; }
    for c in in out local masq; do
      nft flush chain inet berth "n-${id:0:12}-$c" 2>/dev/null || true
      nft delete chain inet berth "n-${id:0:12}-$c" 2>/dev/null || true
    done
  fi
}
cleanup() {
  local n
  for n in "${NAMES[@]}"; do berthd_stop "$n"; done
  grep -o " $RD/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$RD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # the EXIT trap stops the berthds
rm -rf "$RD"
i=0
for n in "${NAMES[@]}"; do
  berthd_start "$n" "$i"; i=$((i + 1))
  $(cli "$n") run --rm --network none "$IMG" true || die "berth ($n) run --network none failed: see $RD/$n/berthd.log"
  $(cli "$n") run --rm "$IMG" true || die "berth ($n) run on the bridge failed: see $RD/$n/berthd.log"
  $(cli "$n") network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}' >"$RD/$n/subnet"
  $(cli "$n") network inspect bridge --format '{{.Id}}' >"$RD/$n/netid"
  note "berth $n: binaries from ${BIN[$n]}, bridge ${BRIDGE[$n]} ($(cat "$RD/$n/subnet")), roots under $RD/$n ($(stat -f -c %T "$RD/$n"))"
done

read -r -a UL <<<"$(podman_ulimits)"
TOOLS=()
for n in "${NAMES[@]}"; do TOOLS+=("$n-none" "$n-bridge"); done
have_podman=0
if command -v podman >/dev/null && podman_p image exists "$IMG" 2>/dev/null; then
  have_podman=1; TOOLS+=(podman-none podman-bridge)
  note "podman $(podman --version | awk '{print $3}'), storage $PODMAN_ROOT, crun"
else
  note "podman: not installed or image missing (run $SHARED/setup-anchors.sh): berth only"
fi
one() { # one TOOL: one run
  case $1 in
    podman-none) "${PODMAN[@]}" run --rm --runtime crun "${UL[@]}" --network none "$IMG" /bin/true ;;
    podman-bridge) "${PODMAN[@]}" run --rm --runtime crun "${UL[@]}" "$IMG" /bin/true ;;
    *-none) $(cli "${1%-none}") run --rm --network none "$IMG" true ;;
    *-bridge) $(cli "${1%-bridge}") run --rm "$IMG" true ;;
  esac
}

# Interleaved rounds.
ROUNDS=${ROUNDS:-9}
ILOOP_N=${ILOOP_N:-5}
for tool in "${TOOLS[@]}"; do
  for ((k = 0; k < ${WARM:-3}; k++)); do one "$tool" </dev/null >/dev/null 2>&1 || true; done
done
interleave

# Where perf is installed: the CNI plugins that ended during a berth
# bridge run (between the CLI's exec and its exit), at the normal
# priority (an attach or detach the run waits for) or in the background
# (the pool's fills and releases, at nice 19); and when the container's
# program ran.
PHASE_RUNS=${PHASE_RUNS:-10}
if command -v perf >/dev/null && [ "$(perf list 2>/dev/null | grep -c sched:sched_process_exec || true)" != 0 ]; then
  echo "== berth bridge runs: CNI plugins on the run's way (perf sched tracepoints, $PHASE_RUNS runs)"
  for n in "${NAMES[@]}"; do
    pd=$RD/perf.data
    for ((k = 0; k < PHASE_RUNS; k++)); do
      perf record -q -o "$pd" -e sched:sched_process_exec,sched:sched_process_exit -a -- \
        sh -c 'sleep 0.3; exec "$@"' sh $(cli "$n") run --rm "$IMG" true >/dev/null 2>&1 || { note "perf record failed"; break; }
      perf script -i "$pd" -F pid,time,event,trace 2>/dev/null | awk -v cli="${BIN[$n]}/berth" -v cni="${BIN[$n]}/cni/" '
        { for (x = 1; x <= NF; x++) if ($x ~ /^[0-9]+\.[0-9]+:$/) { t = substr($x, 1, length($x) - 1) * 1000; break } }
        /sched_process_exec/ && index($0, "filename=" cli " ") { t0 = t; clipid = $1 }
        /sched_process_exit/ && t0 && !te && /comm=(bridge|host-local|portmap) / && /group_dead=true/ { if (/prio=120 /) on++; else bg++ }
        /sched_process_exec/ && t0 && /filename=\/bin\/true/ { tp = t }
        /sched_process_exit/ && $1 == clipid && /group_dead=true/ { te = t }
        END { if (t0 && te) printf "%d %d %.1f %.1f\n", on, bg, tp - t0, te - t0 }'
    done >"$RD/timeline-$n"
    if [ -s "$RD/timeline-$n" ]; then
      printf '%-10s plugin runs per run: %s at normal priority, %s in the background; CLI exec -> program exec %s ms, -> CLI exit %s ms (medians)\n' "$n" \
        "$(awk '{ print $1 }' "$RD/timeline-$n" | median)" "$(awk '{ print $2 }' "$RD/timeline-$n" | median)" \
        "$(awk '{ print $3 }' "$RD/timeline-$n" | median)" "$(awk '{ print $4 }' "$RD/timeline-$n" | median)" | tee -a "$LOG"
    fi
  done
fi

# Ratios: medians over the rounds, and the median of the per-round ratios.
echo "== ratios (lower is better; target: berth bridge <= 1.30x berth none)"
printf '%-40s %9s %9s %7s %7s\n' "" "A ms" "B ms" "A/B" "rounds"
row() { # row LABEL A B [TARGET]
  local rt rr
  rt=$(ratio_of "${IL[$2.med]}" "${IL[$3.med]}"); rr=$(round_ratio "$2" "$3")
  printf '%-40s %9s %9s %7s %7s %s\n' "$1" "${IL[$2.med]}" "${IL[$3.med]}" "$rt" "$rr" \
    "$([ -n "${4:-}" ] && verdict "$rr" "$4")" | tee -a "$LOG"
}
for n in "${NAMES[@]}"; do
  row "$n: bridge / none" "$n-bridge" "$n-none" 1.30
  if [ $have_podman = 1 ]; then
    row "$n bridge / podman bridge" "$n-bridge" podman-bridge
    row "$n none / podman none" "$n-none" podman-none
  fi
done
[ $have_podman = 1 ] && row "podman: bridge / none" podman-bridge podman-none
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cpus. raw output: $LOG"
if grep -q 'FAILED' "$LOG"; then
  echo "WARNING: some runs failed; their rows say how many (see $LOG)"
  exit 1
fi
