#!/usr/bin/env bash
# What each running container costs berth in memory: berthd plus its
# berth-shims, beyond the containers' own processes. Starts a berthd of its
# own on tmpfs, loads a busybox image, measures berthd with no container,
# runs N idle containers (sleep) and measures again. Memory is PSS from
# /proc/PID/smaps_rollup: the shims share berth-shim's pages, and PSS
# divides shared pages among the processes that map them, so the sum over
# processes counts each page once. RSS is printed beside it, and how many
# shims shed (re-executed themselves once idle, which leaves behind what
# creating the container used). The issue's target: at most 2 MiB per
# container.
# Needs root. Not part of `make test`.
#
#   sudo bench/engine-memory.sh          # N=100
#
# Environment: N (containers, default 100), BIN (default bin/ of the
# checkout, after make build; berthd, berth, berth-runtime, berth-shim),
# MEM_DIR (default /dev/shm/berth-bench-memory), IMAGE_TAR (an OCI or
# docker archive to load; default: the test fixtures' cached busybox
# archive, else a rootfs of Debian's busybox-static imported).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-100}
BIN=${BIN:-$REPO/bin}
DIR=${MEM_DIR:-/dev/shm/berth-bench-memory}
die() { echo "error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
for b in berthd berth berth-runtime berth-shim; do
	[ -x "$BIN/$b" ] || die "$BIN/$b missing: run make build (or set BIN)"
done

rm -rf "$DIR"
mkdir -p "$DIR"
SOCK=$DIR/berthd.sock
B() { "$BIN/berth" -H "unix://$SOCK" "$@"; }
BERTHD_PID=
cleanup() {
	set +e # everything is tried, whatever fails
	if [ -n "$BERTHD_PID" ]; then
		ids=$(B ps -aq 2>/dev/null)
		[ -z "$ids" ] || B rm -f $ids >/dev/null 2>&1
		kill "$BERTHD_PID" 2>/dev/null
		wait "$BERTHD_PID" 2>/dev/null
	fi
	grep -o " $DIR/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	# Shims still ending (and the standby) may write beneath $DIR for a
	# moment after berthd is gone.
	for _ in 1 2 3 4 5 6 7 8 9 10; do rm -rf "$DIR" 2>/dev/null && break; sleep 0.5; done
	[ ! -e "$DIR" ] || echo "warning: $DIR could not be removed" >&2
}
trap cleanup EXIT

"$BIN/berthd" --data-root "$DIR/data" --exec-root "$DIR/run" -H "unix://$SOCK" >"$DIR/berthd.log" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 200); do B version >/dev/null 2>&1 && break; sleep 0.05; done
B version >/dev/null 2>&1 || die "berthd did not start: $(cat "$DIR/berthd.log")"

# The image: an archive to load, or a busybox rootfs to import.
TAR=${IMAGE_TAR:-$(ls -t /var/cache/berth-test/image-*/busybox.oci.tar 2>/dev/null | head -1 || true)}
if [ -n "$TAR" ]; then
	IMG=$(B load -q -i "$TAR" | sed -n 's/^Loaded image: //p' | head -1)
else
	BB=$(command -v busybox) || die "no image: set IMAGE_TAR, or install busybox-static"
	mkdir -p "$DIR/rootfs/bin"
	cp "$BB" "$DIR/rootfs/bin/busybox"
	for a in sh sleep true; do ln -s busybox "$DIR/rootfs/bin/$a"; done
	tar -C "$DIR/rootfs" -cf "$DIR/rootfs.tar" .
	IMG=berth-bench/busybox:latest
	B import "$DIR/rootfs.tar" "$IMG" >/dev/null
fi
[ -n "$IMG" ] || die "no image loaded from $TAR"

# pss PID...: the processes' summed PSS in KiB; rss likewise VmRSS.
pss() { local s=0 p v; for p in "$@"; do v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done; echo $s; }
rss() { local s=0 p v; for p in "$@"; do v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done; echo $s; }
# shims: this berthd's berth-shims: its children running the shim binary,
# or those serving a bundle under $DIR (reparented), with the standby it
# keeps ready for the next start.
SHIM_BIN=$(readlink -f "$BIN/berth-shim")
shims() { local p; for p in /proc/[0-9]*; do
	[ "$(readlink "$p/exe" 2>/dev/null)" = "$SHIM_BIN" ] || continue
	if [ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$BERTHD_PID" ] || tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "--bundle $DIR/run/"; then
		echo "${p#/proc/}"
	fi
done; }
settle() { sleep 2; sync; }

B run --rm --network none "$IMG" true >/dev/null # warm: the first start maps more of berthd
settle
D0_PSS=$(pss "$BERTHD_PID"); D0_RSS=$(rss "$BERTHD_PID")

echo "== starting $N idle containers of $IMG (--network none) on $(stat -f -c %T "$DIR")" >&2
T0=$(date +%s.%N)
RUNS=()
for i in $(seq "$N"); do
	B run -d --network none --name "mem$i" "$IMG" sleep 1000000 >/dev/null &
	RUNS+=($!)
	# A few at a time: the figure is memory, not start-up speed. (A bare
	# wait would wait for berthd too.)
	if ((i % 8 == 0)); then wait "${RUNS[@]}"; RUNS=(); fi
done
[ ${#RUNS[@]} = 0 ] || wait "${RUNS[@]}"
T1=$(date +%s.%N)
RUNNING=$(B ps -q | wc -l)
[ "$RUNNING" = "$N" ] || die "$RUNNING of $N containers running"
settle
mapfile -t SHIMS < <(shims)
[ "${#SHIMS[@]}" -ge "$N" ] || die "found ${#SHIMS[@]} shims for $N containers"
D1_PSS=$(pss "$BERTHD_PID"); D1_RSS=$(rss "$BERTHD_PID")
S_PSS=$(pss "${SHIMS[@]}"); S_RSS=$(rss "${SHIMS[@]}")
# priv PID...: the processes' private (unshared) pages, in KiB.
priv() { local s=0 p v; for p in "$@"; do v=$(awk '/^Private_(Clean|Dirty):/{t+=$2} END{print t+0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done; echo $s; }
S_PRIV=$(priv "${SHIMS[@]}")
# Shims that shed (re-executed once idle: internal/shim/shed.go) show
# --resume-fd on their command line.
SHED=0
for p in "${SHIMS[@]}"; do tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- '--resume-fd' && SHED=$((SHED + 1)); done
# The containers' own processes: the shims' children.
mapfile -t CTRS < <(for s in "${SHIMS[@]}"; do cat /proc/"$s"/task/*/children 2>/dev/null; done | tr ' ' '\n' | grep .)
C_PSS=$(pss "${CTRS[@]}")

awk -v n="$N" -v d0="$D0_PSS" -v d1="$D1_PSS" -v d0r="$D0_RSS" -v d1r="$D1_RSS" -v s="$S_PSS" -v sr="$S_RSS" -v c="$C_PSS" -v sp="$S_PRIV" -v nc="${#CTRS[@]}" -v ns="${#SHIMS[@]}" -v shed="$SHED" -v t0="$T0" -v t1="$T1" 'BEGIN {
	mib = 1024
	printf "containers               %d (started in %.1f s)\n", n, t1 - t0
	printf "berthd PSS               %.1f MiB idle, %.1f MiB with %d containers (RSS %.1f -> %.1f MiB)\n", d0/mib, d1/mib, n, d0r/mib, d1r/mib
	printf "berth-shims PSS          %.1f MiB in all (%d shims), %.2f MiB per container, of which %.2f MiB private (RSS %.2f MiB)\n", s/mib, ns, s/n/mib, sp/n/mib, sr/n/mib
	printf "shims that shed          %d of %d (re-executed once idle)\n", shed, ns
	printf "containers own PSS       %.1f MiB in %d processes (not counted)\n", c/mib, nc
	per = ((d1 - d0) + s) / n / mib
	printf "per container            %.2f MiB (berthd growth %.2f + shim %.2f)   target <= 2.00 MiB: %s\n", per, (d1-d0)/n/mib, s/n/mib, (per <= 2 ? "met" : "NOT met")
}'
