#!/usr/bin/env bash
# A cold pull of the shared bench image (../shared/bench: a 150 MB, 4-layer
# gzip image from a local docker-registry on 127.0.0.1) into a data root on
# tmpfs: berth pull (through berthd) beside podman pull and skopeo copy, and
# the single-stream floor `gzip -dc | tar -x` of the same layers into tmpfs,
# in the same run. Prints medians, the ratios berth/podman and berth/floor
# against the issue's targets (<= 0.4 and <= 1.0), and peak RSS (berthd's
# VmHWM over one cold pull; podman's and skopeo's from /usr/bin/time).
# Needs root. Not part of `make test`.
#
#   sudo bench/image-pull.sh             # RUNS=7 WARMUP=1
#
# Environment: BERTH_SHARED_BENCH (default ../shared/bench beside the
# checkout), RUNS, WARMUP, RSS_RUNS, PULL_DIR (default /dev/shm/berth-bench-pull).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BERTH_SHARED_BENCH:-$REPO/../shared/bench}
SHARED=$(cd "$SHARED" && pwd) || { echo "error: no shared bench scripts at $SHARED" >&2; exit 1; }
export RUNS=${RUNS:-7} WARMUP=${WARMUP:-1} RSS_RUNS=${RSS_RUNS:-3}
# shellcheck source=/dev/null
. "$SHARED/lib.sh"
need_root; need hyperfine; need skopeo; need podman
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"

cd "$REPO"
echo "== make build" >&2
make -s build >&2
[ -f "$BIG_OCI/.complete" ] || SKIP_APT=1 "$SHARED/setup-anchors.sh" >&2

PD=${PULL_DIR:-/dev/shm/berth-bench-pull}
export BERTH_BENCH_PULL_DIR=$PD
mkdir -p "$PD"
[ "$(stat -f -c %T "$PD")" = tmpfs ] || echo "warning: $PD is not tmpfs; unpacking is then bound by the disk" >&2
SOCK=$PD/berthd.sock
BERTHD_PID=
berthd_start() { # a fresh berthd with its data root under $PD
  rm -rf "$PD/berth"
  bin/berthd --data-root "$PD/berth/data" --exec-root "$PD/berth/run" -H "unix://$SOCK" >"$PD/berthd.log" 2>&1 &
  BERTHD_PID=$!
  for _ in $(seq 100); do bin/berth -H "unix://$SOCK" version >/dev/null 2>&1 && return; sleep 0.05; done
  die "berthd did not start (see $PD/berthd.log)"
}
berthd_stop() {
  [ -n "$BERTHD_PID" ] || return 0
  kill "$BERTHD_PID" 2>/dev/null || true; wait "$BERTHD_PID" 2>/dev/null || true; BERTHD_PID=
}
REF=$REG/berth-bench/big:latest
trap 'berthd_stop; bash "$SHARED/pull-once.sh" clean >/dev/null 2>&1 || true; rm -rf "$PD"; reg_stop' EXIT

reg_start
skopeo copy -q --dest-tls-verify=false "oci:$BIG_OCI:$BIG_TAG" "docker://$REF" >/dev/null
MAN=$(jq -r '.manifests[0].digest' "$BIG_OCI/index.json" | cut -d: -f2)
mapfile -t LAYERS < <(jq -r '.layers[].digest' "$BIG_OCI/blobs/sha256/$MAN" | sed "s|^sha256:|$BIG_OCI/blobs/sha256/|")
COMP=$(cat "${LAYERS[@]}" | wc -c)
echo "== $REF: ${#LAYERS[@]} layers, $(awk -v c="$COMP" 'BEGIN{printf "%.1f MB", c/1e6}') compressed; pulls into $PD ($(stat -f -c %T "$PD")); $(nproc) CPUs"

row() { local r; r=$(measure "$@") || return 1; echo "$r"; echo "$r" >&2; }

# berth: every timed pull starts from an empty store (rmi + prune -a
# removes the image's blobs and snapshots), against one running berthd.
berthd_start
BERTH=(bin/berth -H "unix://$SOCK")
# (hyperfine runs its --prepare command without a shell: a script it is.)
cat >"$PD/reset.sh" <<EOT
${BERTH[*]} rmi -f $REF >/dev/null 2>&1
${BERTH[*]} image prune -a -f >/dev/null 2>&1
true
EOT
export PREPARE="sh $PD/reset.sh"
B=$(row "berth pull" -- "${BERTH[@]}" pull -q "$REF")
unset PREPARE
berthd_stop

export PREPARE="bash $SHARED/pull-once.sh clean"
P=$(row "podman pull (overlay)" -- bash "$SHARED/pull-once.sh" podman "$REF")
S=$(row "skopeo copy -> oci: (no unpack)" -- bash "$SHARED/pull-once.sh" skopeo "$REF")
UNTAR='d=$1; shift; mkdir -p "$d"; for l; do gzip -dc "$l" | tar -x -C "$d" || exit 1; done'
export PREPARE="rm -rf $PD/untar"
F=$(row "gzip -dc | tar -x (floor, tmpfs)" -- sh -c "$UNTAR" sh "$PD/untar" "${LAYERS[@]}")
unset PREPARE
rm -rf "$PD/untar"

# berthd's peak RSS over one cold pull (the CLI above is only a client).
berthd_start
"${BERTH[@]}" pull -q "$REF" >/dev/null
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$BERTHD_PID/status")
berthd_stop

wb=$(wall_of <<<"$B"); wp=$(wall_of <<<"$P"); wf=$(wall_of <<<"$F"); ws=$(wall_of <<<"$S")
prss=$(sed -n 's/.*peak_rss= *\([0-9]*\) KiB.*/\1/p' <<<"$P")
echo
echo "== summary (medians of $RUNS cold pulls)"
printf '   berth / podman pull   %s   (target <= 0.40)\n' "$(ratio "$wb" "$wp")"
printf '   berth / gzip|tar floor %s  (target <= 1.00)\n' "$(ratio "$wb" "$wf")"
printf '   berth / skopeo copy   %s   (skopeo does not unpack)\n' "$(ratio "$wb" "$ws")"
printf '   berthd peak RSS %d KiB; podman pull %d KiB (target: berthd <= podman)\n' "$HWM" "$prss"
