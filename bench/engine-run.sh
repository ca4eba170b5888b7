#!/usr/bin/env bash
# `berth run --rm --network none IMAGE true` beside `podman run --rm
# --network none` and containerd's `ctr run --rm` of the same busybox image,
# in the same run, with the ratios against the engine issue's target (berth
# at most 0.3x podman) and a per-phase breakdown of berth's run.
#
# berth: a berthd of its own (data and exec roots on tmpfs, the default
# berth-runtime), the shared busybox image loaded offline from the
# docker-archive the shared fixtures build (`berth load`), timed through
# the berth CLI. podman and ctr: ../shared/bench/engine-run.sh (podman's
# storage as the shared scripts keep it, containerd on a private socket).
# Then interleaved rounds (each tool in turn, the order rotating, so that
# the load of a shared host favours none), and the phases of berth's run:
# the API calls one by one (create, start, wait, delete with curl), and,
# where perf is installed, the process timeline of whole `berth run`s
# (when the container's init and its program are executed, when the
# program exits, when the CLI exits). Needs root. Not part of `make test`.
#
#   sudo bench/engine-run.sh
#   sudo RUNS=30 ROUNDS=9 bench/engine-run.sh
#
# Environment: BERTH_SHARED_BENCH (default ../shared/bench beside the
# checkout), BERTH_BIN (a directory with berth, berthd, berth-shim and
# berth-runtime; default: `make build` and bin/), RUNS, WARMUP, RSS_RUNS
# (as lib.sh), ROUNDS (7) and ILOOP_N (10) for the interleaved rounds,
# PHASE_RUNS (15), RUN_DIR (default /dev/shm/berth-bench-run, tmpfs),
# SKIP_SHARED=1 (no shared engine-run.sh: the interleaved rounds still
# measure the peers), BERTH_ALT="NAME=DIR ..." (other berth builds, each
# with a berthd of its own, in the interleaved rounds: before and after a
# change, side by side), BERTH_BENCH_LOG.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BERTH_SHARED_BENCH:-$REPO/../shared/bench}
SHARED=$(cd "$SHARED" && pwd) || { echo "error: no shared bench scripts at $SHARED" >&2; exit 1; }
# shellcheck source=/dev/null
. "$SHARED/lib.sh"
# shellcheck source=bench/rounds.sh
. "$REPO/bench/rounds.sh"
need_root; need hyperfine; need curl; need jq
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"

# crun 1.8 refuses this hybrid host while cgroup2 holds a controller: the
# whole script runs in a private mount namespace with
# /sys/fs/cgroup/unified unmounted (lib.sh), so berthd, podman and
# containerd see the same pure cgroup v1 host. The shared script inherits
# BERTH_BENCH_MASKED and does not mask again.
mask_unified_cgroup "$@"

cd "$REPO"
if [ -z "${BERTH_BIN:-}" ]; then
  echo "== make build" >&2
  make -s build >&2
  BERTH_BIN=$REPO/bin
fi
BERTH_BIN=$(cd "$BERTH_BIN" && pwd)
for b in berth berthd berth-shim berth-runtime; do
  [ -x "$BERTH_BIN/$b" ] || die "no $b in $BERTH_BIN"
done
[ -f "$BUSYBOX_DOCKER_ARCHIVE" ] || SKIP_BIG=1 SKIP_APT=${SKIP_APT:-1} "$SHARED/setup-anchors.sh" >&2
[ -f "$BUSYBOX_DOCKER_ARCHIVE" ] || die "no $BUSYBOX_DOCKER_ARCHIVE (run $SHARED/setup-anchors.sh)"

mkdir -p "$BBRUN"
LOG=${BERTH_BENCH_LOG:-$BBRUN/berth-engine-run.log}
: >"$LOG"
RD=${RUN_DIR:-/dev/shm/berth-bench-run}
SOCK=$RD/berthd.sock
BERTHD_PID=
BERTH=("$BERTH_BIN/berth" -H "unix://$SOCK")
berthd_start() {
  mkdir -p "$RD"
  [ "$(stat -f -c %T "$RD")" = tmpfs ] || echo "warning: $RD is not tmpfs" >&2
  "$BERTH_BIN/berthd" --data-root "$RD/data" --exec-root "$RD/run" -H "unix://$SOCK" \
    --pidfile "$RD/berthd.pid" >"$RD/berthd.log" 2>&1 &
  BERTHD_PID=$!
  for _ in $(seq 200); do "${BERTH[@]}" version >/dev/null 2>&1 && return; sleep 0.05; done
  die "berthd did not start (see $RD/berthd.log)"
}
berthd_stop() {
  [ -n "$BERTHD_PID" ] || return 0
  # Containers a failed run left behind go first: their shims outlive berthd.
  "${BERTH[@]}" ps -aq 2>/dev/null | xargs -r "${BERTH[@]}" rm -f >/dev/null 2>&1 || true
  kill "$BERTHD_PID" 2>/dev/null || true; wait "$BERTHD_PID" 2>/dev/null || true; BERTHD_PID=
}
# Other berth builds for the interleaved rounds (BERTH_ALT="NAME=DIR ..."):
# each gets a berthd of its own under $RD/alt-NAME.
declare -A ALT_BIN ALT_PID
for a in ${BERTH_ALT:-}; do
  [ -x "${a#*=}/berthd" ] || die "BERTH_ALT: no berthd in ${a#*=}"
  ALT_BIN[${a%%=*}]=$(cd "${a#*=}" && pwd)
done
alt_berth() { echo "${ALT_BIN[$1]}/berth" -H "unix://$RD/alt-$1/berthd.sock"; }
alt_start() { # alt_start NAME
  local d=$RD/alt-$1 b; b=${ALT_BIN[$1]}
  mkdir -p "$d"
  "$b/berthd" --data-root "$d/data" --exec-root "$d/run" -H "unix://$d/berthd.sock" \
    --pidfile "$d/berthd.pid" >"$d/berthd.log" 2>&1 &
  ALT_PID[$1]=$!
  for _ in $(seq 200); do $(alt_berth "$1") version >/dev/null 2>&1 && break; sleep 0.05; done
  $(alt_berth "$1") load -q -i "$BUSYBOX_DOCKER_ARCHIVE" >/dev/null || die "berthd of $b: load failed (see $d/berthd.log)"
}
alt_stop() {
  local n
  for n in "${!ALT_PID[@]}"; do
    $(alt_berth "$n") ps -aq 2>/dev/null | xargs -r $(alt_berth "$n") rm -f >/dev/null 2>&1 || true
    kill "${ALT_PID[$n]}" 2>/dev/null || true; wait "${ALT_PID[$n]}" 2>/dev/null || true
  done
  ALT_PID=()
}
cleanup() {
  berthd_stop
  alt_stop
  ctrd_stop
  # Mounts berthd left under the run dir (it unmounts its own on exit).
  grep -o " $RD/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$RD"
}
trap cleanup EXIT
rm -rf "$RD"
berthd_start
IMG=$BUSYBOX_IMG
"${BERTH[@]}" load -q -i "$BUSYBOX_DOCKER_ARCHIVE" >/dev/null
"${BERTH[@]}" image inspect "$IMG" >/dev/null || die "berth load of $BUSYBOX_DOCKER_ARCHIVE did not give $IMG"
BRUN=("${BERTH[@]}" run --rm --network none "$IMG" true)
"${BRUN[@]}" || die "berth run failed: see $RD/berthd.log"
note "berth: $("${BERTH[@]}" version --format '{{.Server.Version}}' 2>/dev/null), binaries from $BERTH_BIN, roots under $RD ($(stat -f -c %T "$RD"))"

row() { local r; r=$(measure "$@") || return 1; echo "$r" | tee -a "$LOG"; }

# 1. The peers, by the shared script (podman crun and runc, ctr with runc
#    and crun; --network none).
if [ "${SKIP_SHARED:-0}" != 1 ]; then
  echo "== peers: $SHARED/engine-run.sh (NO_BRIDGE=1)"
  NO_BRIDGE=1 "$SHARED/engine-run.sh" 2>&1 | tee -a "$LOG" || echo "warning: the shared engine-run.sh failed" | tee -a "$LOG"
fi

# 2. berth, measured the same way.
echo "== berth (berthd on $RD)"
row "berth --version" -- "$BERTH_BIN/berth" --version
row "berth run --rm net=none" -- "${BRUN[@]}"
for rt in runc crun; do
  command -v "$rt" >/dev/null || continue
  row "berth run --rm net=none ($rt)" -- "${BERTH[@]}" run --rm --network none --runtime "$rt" "$IMG" true ||
    echo "berth run --runtime $rt failed (see $RD/berthd.log)" | tee -a "$LOG"
done

# 3. Interleaved rounds: ILOOP_N sequential runs of each tool in turn.
ROUNDS=${ROUNDS:-7}
ILOOP_N=${ILOOP_N:-10}
read -r -a UL <<<"$(podman_ulimits)"
declare -A CMDS
TOOLS=(berth)
for n in "${!ALT_BIN[@]}"; do alt_start "$n"; TOOLS+=("berth-$n"); done
have_podman=0
if command -v podman >/dev/null && podman_p image exists "$IMG" 2>/dev/null; then
  have_podman=1; TOOLS+=(podman-crun)
fi
have_ctr=0
if command -v containerd >/dev/null; then
  ctrd_start && "${CTR[@]}" images import "$BUSYBOX_DOCKER_ARCHIVE" >/dev/null && { have_ctr=1; TOOLS+=(ctr-runc); }
fi
one() { # one TOOL I: one run of TOOL
  case $1 in
    berth) "${BRUN[@]}" ;;
    berth-*) $(alt_berth "${1#berth-}") run --rm --network none "$IMG" true ;;
    podman-crun) "${PODMAN[@]}" run --rm --runtime crun "${UL[@]}" --network none "$IMG" /bin/true ;;
    ctr-runc) "${CTR[@]}" run --rm "$IMG" "bb-il-$$-$2" /bin/true ;;
  esac
}
interleave
ctrd_stop
alt_stop

# 4. Phases of berth's run.
PHASE_RUNS=${PHASE_RUNS:-15}
echo "== phases of berth's run: the API calls one by one (curl, median of $PHASE_RUNS)"
API="http://localhost/v1.44"
call() { # call METHOD PATH [BODY]: prints curl's time_total in ms, fails on HTTP >= 300
  local out data=()
  [ -n "${3:-}" ] && data=(-H 'Content-Type: application/json' -d "$3")
  out=$(curl -sS --unix-socket "$SOCK" -o "$RD/resp" -w '%{http_code} %{time_total}' -X "$1" \
    "${data[@]}" "$API$2") || return 1
  [ "${out%% *}" -lt 300 ] || { echo "$1 $2: HTTP ${out%% *}: $(cat "$RD/resp")" >&2; return 1; }
  awk -v t="${out#* }" 'BEGIN{ printf "%.2f", t * 1000 }'
}
declare -A PH
body=$(jq -cn --arg img "$IMG" '{Image: $img, Cmd: ["true"], HostConfig: {NetworkMode: "none"}}')
for ((i = 0; i < PHASE_RUNS; i++)); do
  c=$(call POST /containers/create "$body") || die "create failed"
  id=$(jq -r .Id "$RD/resp")
  s=$(call POST "/containers/$id/start") || die "start failed"
  w=$(call POST "/containers/$id/wait") || die "wait failed"
  jq -e '.StatusCode == 0' "$RD/resp" >/dev/null || die "the container exited with $(cat "$RD/resp")"
  d=$(call DELETE "/containers/$id") || die "delete failed"
  PH[create]+="$c "; PH[start]+="$s "; PH[wait]+="$w "; PH[delete]+="$d "
  PH[sum]+="$(awk -v a="$c" -v b="$s" -v c="$w" -v d="$d" 'BEGIN{ printf "%.2f", a + b + c + d }') "
done
for p in create start wait delete sum; do
  PH[$p.med]=$(tr ' ' '\n' <<<"${PH[$p]}" | grep . | median)
  printf '%-22s %7.1f ms\n' "api $p" "${PH[$p.med]}" | tee -a "$LOG"
done

# Where perf is installed: when, counted from the CLI's exec, the
# container's init (a berth-runtime `init` from a sealed descriptor) and
# the program are executed, the program exits, and the CLI exits; median
# over PHASE_RUNS runs. Scheduler tracepoints, system-wide, so nothing is
# slowed down by tracing.
if command -v perf >/dev/null && [ "$(perf list 2>/dev/null | grep -c sched:sched_process_exec || true)" != 0 ]; then
  echo "== phases of berth's run: process timeline (perf sched tracepoints, median of $PHASE_RUNS)"
  pd=$RD/perf.data
  for ((i = 0; i < PHASE_RUNS; i++)); do
    # perf's own start-up (it walks every process of the host) must be
    # over before the run begins.
    perf record -q -o "$pd" -e sched:sched_process_exec,sched:sched_process_exit -a -- \
      sh -c 'sleep 0.5; exec "$@"' sh "${BRUN[@]}" >/dev/null 2>&1 || { note "perf record failed"; break; }
    perf script -i "$pd" -F pid,time,event,trace 2>/dev/null | awk -v cli="$BERTH_BIN/berth" '
      { for (k = 1; k <= NF; k++) if ($k ~ /^[0-9]+\.[0-9]+:$/) { t = substr($k, 1, length($k) - 1) * 1000; break } }
      /sched_process_exec/ && index($0, "filename=" cli " ") { t0 = t; clipid = $1 }
      /sched_process_exec/ && t0 && !ti && /filename=\/proc\/self\/fd\/|filename=[^ ]*berth-runtime / { ti = t }
      /sched_process_exec/ && t0 && /filename=\/bin\/true|filename=\/usr\/bin\/true/ { tp = t; ppid = $1 }
      /sched_process_exit/ && tp && !tx && $1 == ppid && /group_dead=true/ { tx = t }
      /sched_process_exit/ && $1 == clipid && /group_dead=true/ { te = t }
      END { if (t0 && ti && tp && tx && te) printf "%.2f %.2f %.2f %.2f %.2f\n", ti - t0, tp - ti, tx - tp, te - tx, te - t0 }'
  done >"$RD/timeline"
  if [ -s "$RD/timeline" ]; then
    names=("CLI exec -> init exec" "init exec -> program exec" "program runs" "program exit -> CLI exit" "CLI exec -> CLI exit")
    for k in 1 2 3 4 5; do
      printf '%-30s %7.1f ms\n' "${names[$((k - 1))]}" "$(awk -v k=$k '{ print $k }' "$RD/timeline" | median)" | tee -a "$LOG"
    done
  else
    echo "(no complete timeline: perf saw no init or program exec)"
  fi
fi

# 5. Ratios.
wall() { awk -v l="$1 " 'index($0, l) == 1 && /wall_med=/ { sub(/.*wall_med= */, ""); sub(/ ms.*/, ""); print; exit }' "$LOG"; }
B=$(wall "berth run --rm net=none")
echo "== berth run --rm --network none IMAGE true: ratios (lower is better; target <= 0.30x podman)"
printf '%-44s %10s %10s %8s\n' "peer" "peer ms" "berth ms" "ratio"
for peer in "podman run --rm net=none (crun)" "podman run --rm net=none (runc)" "ctr run --rm (runc shim v2, runc)" "ctr run --rm (runc shim v2, crun)"; do
  p=$(wall "$peer"); [ -n "$p" ] || continue
  rt=$(ratio_of "$B" "$p")
  printf '%-44s %10s %10s %8s %s\n' "$peer" "$p" "$B" "$rt" "$([[ $peer == podman* ]] && verdict "$rt" 0.30)"
done
# Interleaved: the medians over the rounds, and the median of the ratios
# taken round by round (each round's tools ran back to back, under one
# load), the figure to read first on a shared host.
for bt in berth "${!ALT_BIN[@]}"; do
  [ "$bt" = berth ] || bt=berth-$bt
  b=${IL[$bt.med]:-}
  for tool in podman-crun ctr-runc; do
    p=${IL[$tool.med]:-}; [ -n "$p" ] || continue
    rt=$(ratio_of "$b" "$p")
    printf '%-44s %10s %10s %8s %s\n' "$tool (interleaved, $bt)" "$p" "$b" "$rt" "$([[ $tool == podman* ]] && verdict "$rt" 0.30)"
    rr=$(round_ratio "$bt" "$tool")
    printf '%-44s %10s %10s %8s %s\n' "  the same, median of per-round ratios" "" "" "$rr" "$([[ $tool == podman* ]] && verdict "$rr" 0.30)"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cpus. raw output: $LOG"
if grep -q 'FAILED' "$LOG"; then
  echo "WARNING: some runs failed; their rows say how many (see $LOG)"
  exit 1
fi
