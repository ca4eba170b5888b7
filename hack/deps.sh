#!/bin/sh
# Installs the Debian packages berth's build, main job and tests use.
# Idempotent: only missing packages are installed.
set -eu
pkgs="busybox-static gcc libc6-dev make pkg-config libseccomp-dev iproute2 procps runc crun containerd podman uidmap hyperfine jq time docker-registry debootstrap skopeo nftables"
# `hack/deps.sh vm`: also what the test guest (make test-vm) needs.
if [ "${1:-}" = vm ]; then
	pkgs="$pkgs qemu-system-x86 debootstrap e2fsprogs xz-utils"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages:$missing (run as root to install them)" >&2
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
