#!/usr/bin/env bash
# berth-runtime beside runc and crun on the same work in the same run.
#
# Builds bin/berth-runtime, makes sure the shared perf-anchor fixtures exist
# (../shared/bench/setup-anchors.sh with SKIP_BIG=1), runs the shared
# ../shared/bench/runtime-lifecycle.sh with RUNTIMES="runc crun <berth>",
# then interleaved rounds of sequential containers (the runtimes in turn,
# so that a drifting load on a shared host favours none), peak RSS of one
# `run` of each runtime with /usr/bin/time -v, and prints berth/runc and
# berth/crun ratios against the targets in bench/README.md. Needs root.
# Not part of `make test`.
#
#   sudo bench/runtime-lifecycle.sh
#   sudo RUNS=30 LOOP_RUNS=9 bench/runtime-lifecycle.sh
#
# Environment: BERTH_SHARED_BENCH (default ../shared/bench beside the
# checkout), RUNS, WARMUP, RSS_RUNS, LOOP_N, LOOP_RUNS (passed on to the
# shared script), ROUNDS and ILOOP_N (the interleaved rounds),
# BERTH_BENCH_LOG (where the raw output is kept; default a file under
# $BERTH_BENCH_RUN).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BERTH_SHARED_BENCH:-$REPO/../shared/bench}
SHARED=$(cd "$SHARED" && pwd) || { echo "error: no shared bench scripts at $SHARED" >&2; exit 1; }
# lib.sh gives the fixture paths, need/need_root, median and the cgroup mask.
# shellcheck source=/dev/null
. "$SHARED/lib.sh"
need_root; need hyperfine
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"

# crun 1.8 refuses this hybrid host while cgroup2 holds a controller: like
# the shared script, re-run this whole script in a private mount namespace
# with /sys/fs/cgroup/unified unmounted, so that every runtime, and the RSS
# runs below, see the same pure cgroup v1 host. The shared script inherits
# BERTH_BENCH_MASKED and does not mask again.
mask_unified_cgroup "$@"

cd "$REPO"
echo "== make build" >&2
make build >&2
BERTH=$REPO/bin/berth-runtime

# The shared script's fixtures (the busybox bundle). apt-get only when a
# tool the lifecycle script uses is missing.
skip_apt=1
for t in runc crun hyperfine jq busybox; do command -v "$t" >/dev/null || skip_apt=0; done
echo "== fixtures: $SHARED/setup-anchors.sh (SKIP_BIG=1)" >&2
SKIP_BIG=1 SKIP_APT=${SKIP_APT:-$skip_apt} "$SHARED/setup-anchors.sh" >&2

mkdir -p "$BBRUN"
LOG=${BERTH_BENCH_LOG:-$BBRUN/berth-runtime-lifecycle.log}
RUNTIMES="runc crun $BERTH"
LOOP_N=${LOOP_N:-50}
shared_rc=0
RUNTIMES=$RUNTIMES LOOP_N=$LOOP_N "$SHARED/runtime-lifecycle.sh" 2>&1 | tee "$LOG" || shared_rc=$?

# Interleaved rounds: on a shared host the load drifts while the shared
# script measures one runtime after the other. Here every round runs
# ILOOP_N sequential containers with each runtime in turn (the order
# rotating), for run and for create+start+delete, and the figure is the
# median over ROUNDS of the time per container.
ROUNDS=${ROUNDS:-7}
ILOOP_N=${ILOOP_N:-20}
echo "== interleaved: $ROUNDS rounds x $ILOOP_N sequential containers per runtime and mode (ctr-loop.sh)"
declare -A IL IF
read -r -a RTS <<<"$RUNTIMES"
for ((r = 0; r < ROUNDS; r++)); do
  for mode in run csd; do
    for ((j = 0; j < ${#RTS[@]}; j++)); do
      rt=${RTS[$(((r + j) % ${#RTS[@]}))]}
      t0=$EPOCHREALTIME
      if ! err=$(sh "$SHARED/ctr-loop.sh" "$rt" "$ILOOP_N" "$mode" 2>&1 >/dev/null); then
        n=$(sed -n 's/^\([0-9][0-9]*\) of .*/\1/p' <<<"$err" | head -1)
        IF[$rt.$mode]=$(( ${IF[$rt.$mode]:-0} + ${n:-$ILOOP_N} ))
      fi
      t1=$EPOCHREALTIME
      IL[$rt.$mode]+="$(awk -v a="$t0" -v b="$t1" -v n="$ILOOP_N" 'BEGIN{ printf "%.2f", (b - a) * 1000 / n }') "
    done
  done
done
for rt in $RUNTIMES; do
  for mode in run csd; do
    med=$(tr ' ' '\n' <<<"${IL[$rt.$mode]}" | grep . | median)
    IL[$rt.$mode.med]=$(printf "%.1f" "$med")
    printf '%-34s %-3s %7.2f ms per container  (rounds: %s)%s\n' "$rt" "$mode" "$med" "${IL[$rt.$mode]% }" \
      "$( [ "${IF[$rt.$mode]:-0}" != 0 ] && echo "  failed: ${IF[$rt.$mode]} of $((ROUNDS * ILOOP_N)) runs")" | tee -a "$LOG"
  done
done

# The same rounds with a memory and a pids limit (the confinement issue's
# target: within 1.2x of crun on this work). The bundle shares the fixture's
# rootfs; only config.json differs.
LB=$BBRUN/bundle-limits
mkdir -p "$LB"
jq --arg root "$BUNDLE/rootfs" '.root.path = $root
  | .linux.resources.memory.limit = 268435456
  | .linux.resources.pids.limit = 1024' "$BUNDLE/config.json" >"$LB/config.json"
echo "== interleaved with memory and pids limits: $ROUNDS rounds x $ILOOP_N runs per runtime"
declare -A LL
for ((r = 0; r < ROUNDS; r++)); do
  for ((j = 0; j < ${#RTS[@]}; j++)); do
    rt=${RTS[$(((r + j) % ${#RTS[@]}))]}
    t0=$EPOCHREALTIME
    sh "$SHARED/ctr-loop.sh" "$rt" "$ILOOP_N" run "$LB" >/dev/null 2>&1 || IF[$rt.limits]=$(( ${IF[$rt.limits]:-0} + 1 ))
    t1=$EPOCHREALTIME
    LL[$rt]+="$(awk -v a="$t0" -v b="$t1" -v n="$ILOOP_N" 'BEGIN{ printf "%.2f", (b - a) * 1000 / n }') "
  done
done
for rt in $RUNTIMES; do
  LL[$rt.med]=$(printf "%.1f" "$(tr ' ' '\n' <<<"${LL[$rt]}" | grep . | median)")
  printf '%-34s run+limits %7s ms per container  (rounds: %s)%s\n' "$rt" "${LL[$rt.med]}" "${LL[$rt]% }" \
    "$( [ "${IF[$rt.limits]:-0}" != 0 ] && echo "  failed rounds: ${IF[$rt.limits]}")" | tee -a "$LOG"
done

# wall median of the row LABEL in the log
wall() {
  awk -v l="$1 " 'index($0, l) == 1 && /wall_med=/ {
    sub(/.*wall_med= */, ""); sub(/ ms.*/, ""); print; exit }' "$LOG"
}

# The shared script stops at the first command that fails even once under
# hyperfine. Any figure it left out is measured here the same way but with
# failures ignored (hyperfine -i), and the row says how many runs failed:
# such a figure is a bug report, not a result.
remeasure() { # remeasure LABEL RUNS WARMUP -- CMD...
  local label=$1 runs=$2 warmup=$3; shift 4
  local js; js=$(mktemp)
  hyperfine -N -i --style none --warmup "$warmup" --runs "$runs" --export-json "$js" \
    -- "$(printf '%q ' "$@")" >/dev/null 2>&1 || { rm -f "$js"; return 1; }
  jq -r '.results[0] | "\(.median) \(.min) \(.max) \(.user + .system) \([.exit_codes[] | select(. != 0)] | length) \(.exit_codes | length)"' "$js" |
    awk -v l="$label" '{ printf "%-34s wall_med=%8.1f ms  (min %7.1f max %7.1f)  cpu_mean=%8.1f ms  hyperfine -i: %d of %d runs failed\n",
      l, $1 * 1000, $2 * 1000, $3 * 1000, $4 * 1000, $5, $6 }' | tee -a "$LOG"
  rm -f "$js"
}
if [ "$shared_rc" != 0 ]; then
  echo "== the shared script failed (status $shared_rc); figures it left out, failures ignored:"
  for rt in $RUNTIMES; do
    for mode in run csd; do
      [ -n "$(wall "$rt $mode")" ] ||
        remeasure "$rt $mode" "$RUNS" "$WARMUP" -- sh "$SHARED/ctr-once.sh" "$rt" "$mode" || true
    done
    [ -n "$(wall "$rt x$LOOP_N")" ] ||
      remeasure "$rt x$LOOP_N" "${LOOP_RUNS:-5}" 1 -- sh "$SHARED/ctr-loop.sh" "$rt" "$LOOP_N" run || true
  done
fi

# peak RSS of one `run --bundle` of /bin/true, from /usr/bin/time -v
# (the largest process of the tree: the runtime or its init), median of
# RSS_RUNS runs.
echo "== peak RSS of '<runtime> run' (/usr/bin/time -v, median of $RSS_RUNS)"
declare -A RSS
for rt in $RUNTIMES; do
  root=$BBRUN/$(basename "$rt")-state
  tf=$(mktemp); vals=()
  for ((i = 0; i < RSS_RUNS; i++)); do
    id=bb-rss-$$-$i
    /usr/bin/time -v -o "$tf" "$rt" --root "$root" run --bundle "$BUNDLE" "$id" </dev/null >/dev/null 2>&1 \
      || note "$rt run failed (run $i)"
    [ -e "$root/$id" ] && "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1
    vals+=("$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$tf")")
  done
  rm -f "$tf"
  RSS[$rt]=$(printf '%s\n' "${vals[@]}" | median)
  printf '%-34s peak_rss=%7s KiB  (%s MiB)\n' "$rt run" "${RSS[$rt]}" \
    "$(awk -v k="${RSS[$rt]}" 'BEGIN{printf "%.1f", k/1024}')"
done

# fastest run of the row LABEL in the log
wall_min() {
  awk -v l="$1 " 'index($0, l) == 1 && /wall_med=/ {
    sub(/.*\(min */, ""); sub(/ max.*/, ""); print; exit }' "$LOG"
}
declare -A W M
for rt in $RUNTIMES; do
  for k in run csd loop; do
    label="$rt $k"; [ "$k" = loop ] && label="$rt x$LOOP_N"
    W[$rt.$k]=$(wall "$label"); M[$rt.$k]=$(wall_min "$label")
    [ -n "${W[$rt.$k]}" ] || { note "no '$k' figure for $rt in $LOG"; W[$rt.$k]=nan; M[$rt.$k]=nan; }
  done
done

# ratio_of A B: A/B with two decimals, "-" when either is missing
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "nan" || b == "nan" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# verdict RATIO LIMIT: "ok" when RATIO <= LIMIT
verdict() { awk -v r="$1" -v l="$2" 'BEGIN{ if (r == "-") print "?"; else print (r + 0 <= l + 0) ? "ok" : "MISS" }'; }

echo "== berth-runtime ratios (wall medians; lower is better)"
printf '%-22s %10s %10s %10s %12s %12s\n' "work" "berth" "runc" "crun" "berth/runc" "berth/crun"
row() { # row NAME UNIT B R C RUNC_TARGET CRUN_TARGET
  local br bc
  br=$(ratio_of "$3" "$4"); bc=$(ratio_of "$3" "$5")
  printf '%-22s %8s%s %8s%s %8s%s %7s %-4s %7s %-4s\n' "$1" "$3" "$2" "$4" "$2" "$5" "$2" \
    "$br" "$( [ -n "$6" ] && verdict "$br" "$6")" "$bc" "$( [ -n "$7" ] && verdict "$bc" "$7")"
}
row "run /bin/true" ms "${W[$BERTH.run]}" "${W[runc.run]}" "${W[crun.run]}" 0.5 1.2
row "create+start+delete" ms "${W[$BERTH.csd]}" "${W[runc.csd]}" "${W[crun.csd]}" 0.5 1.2
row "$LOOP_N sequential runs" ms "${W[$BERTH.loop]}" "${W[runc.loop]}" "${W[crun.loop]}" 0.5 1.2
row "peak RSS (run)" K "${RSS[$BERTH]}" "${RSS[runc]}" "${RSS[crun]}" 1.0 ""
echo "== the same by fastest run (less sensitive to a busy host)"
row "run /bin/true" ms "${M[$BERTH.run]}" "${M[runc.run]}" "${M[crun.run]}" 0.5 1.2
row "create+start+delete" ms "${M[$BERTH.csd]}" "${M[runc.csd]}" "${M[crun.csd]}" 0.5 1.2
row "$LOOP_N sequential runs" ms "${M[$BERTH.loop]}" "${M[runc.loop]}" "${M[crun.loop]}" 0.5 1.2
echo "== interleaved rounds (median time per container)"
row "run /bin/true" ms "${IL[$BERTH.run.med]}" "${IL[runc.run.med]}" "${IL[crun.run.med]}" 0.5 1.2
row "create+start+delete" ms "${IL[$BERTH.csd.med]}" "${IL[runc.csd.med]}" "${IL[crun.csd.med]}" 0.5 1.2
row "run, memory+pids limit" ms "${LL[$BERTH.med]}" "${LL[runc.med]}" "${LL[crun.med]}" "" 1.2
echo "targets: time <= 0.5x runc and <= 1.2x crun; peak RSS <= runc's. load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cpus. raw output: $LOG"
if grep -Eq 'hyperfine -i: [1-9]|  failed: [1-9]|failed rounds: [1-9]' "$LOG"; then
  echo "WARNING: some runs failed; their rows above say how many (see $LOG)"
  exit 1
fi
exit "$shared_rc"
