#!/usr/bin/env bash
# berth-runtime beside runc and crun on the same work in the same run.
#
# Builds bin/berth-runtime, makes sure the shared perf-anchor fixtures exist
# (../shared/bench/setup-anchors.sh with SKIP_BIG=1), runs the shared
# ../shared/bench/runtime-lifecycle.sh with RUNTIMES="runc crun <berth>",
# measures peak RSS of one `run` of each runtime with /usr/bin/time -v, and
# prints berth/runc and berth/crun ratios against the targets in
# bench/README.md. Needs root. Not part of `make test`.
#
#   sudo bench/runtime-lifecycle.sh
#   sudo RUNS=30 LOOP_RUNS=9 bench/runtime-lifecycle.sh
#
# Environment: BERTH_SHARED_BENCH (default ../shared/bench beside the
# checkout), RUNS, WARMUP, RSS_RUNS, LOOP_N, LOOP_RUNS (passed on to the
# shared script), BERTH_BENCH_LOG (where the raw output is kept; default
# a file under $BERTH_BENCH_RUN).
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
RUNTIMES=$RUNTIMES "$SHARED/runtime-lifecycle.sh" | tee "$LOG"

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
      || die "$rt run failed"
    [ -e "$root/$id" ] && "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1
    vals+=("$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$tf")")
  done
  rm -f "$tf"
  RSS[$rt]=$(printf '%s\n' "${vals[@]}" | median)
  printf '%-34s peak_rss=%7s KiB  (%s MiB)\n' "$rt run" "${RSS[$rt]}" \
    "$(awk -v k="${RSS[$rt]}" 'BEGIN{printf "%.1f", k/1024}')"
done

# wall median of the shared script's row LABEL
wall() {
  awk -v l="$1 " 'index($0, l) == 1 && /wall_med=/ {
    sub(/.*wall_med= */, ""); sub(/ ms.*/, ""); print; exit }' "$LOG"
}
LOOP_N=${LOOP_N:-50}
declare -A W
for rt in $RUNTIMES; do
  W[$rt.run]=$(wall "$rt run")
  W[$rt.csd]=$(wall "$rt csd")
  W[$rt.loop]=$(wall "$rt x$LOOP_N")
  for k in run csd loop; do
    [ -n "${W[$rt.$k]}" ] || die "no '$k' figure for $rt in $LOG"
  done
done

# verdict RATIO LIMIT: "ok" when RATIO <= LIMIT
verdict() { awk -v r="$1" -v l="$2" 'BEGIN{ print (r <= l) ? "ok" : "MISS" }'; }

echo "== berth-runtime ratios (wall medians; lower is better)"
printf '%-22s %10s %10s %10s %12s %12s\n' "work" "berth" "runc" "crun" "berth/runc" "berth/crun"
row() { # row NAME UNIT B R C RUNC_TARGET CRUN_TARGET
  local br bc
  br=$(ratio "$3" "$4"); bc=$(ratio "$3" "$5")
  printf '%-22s %8s%s %8s%s %8s%s %7s %-4s %7s %-4s\n' "$1" "$3" "$2" "$4" "$2" "$5" "$2" \
    "$br" "$( [ -n "$6" ] && verdict "$br" "$6")" "$bc" "$( [ -n "$7" ] && verdict "$bc" "$7")"
}
row "run /bin/true" ms "${W[$BERTH.run]}" "${W[runc.run]}" "${W[crun.run]}" 0.5 1.2
row "create+start+delete" ms "${W[$BERTH.csd]}" "${W[runc.csd]}" "${W[crun.csd]}" 0.5 1.2
row "$LOOP_N sequential runs" ms "${W[$BERTH.loop]}" "${W[runc.loop]}" "${W[crun.loop]}" 0.5 1.2
row "peak RSS (run)" K "${RSS[$BERTH]}" "${RSS[runc]}" "${RSS[crun]}" 1.0 ""
echo "targets: time <= 0.5x runc and <= 1.2x crun; peak RSS <= runc's. raw output: $LOG"
