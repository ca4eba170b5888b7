#!/bin/sh
# berth's main job: a container started from a locally available image.
# There is no registry to pull from here, so the image is made offline: a
# busybox root filesystem from Debian's busybox-static, imported once with
# `berth import` as berth-demo/busybox:latest. Then `berth run --rm` runs
# it through berthd (which berth starts on demand when its socket is
# absent), berth-shim and berth-runtime. Run as root (make demo).
#
#   hack/demo.sh                 a short tour
#   hack/demo.sh sh              an interactive shell (with a terminal)
#   hack/demo.sh CMD ARGS...     any command in the container
#   BERTH_DEMO_RUNTIME=1 hack/demo.sh    the bundle straight through berth-runtime
set -eu
cd "$(dirname "$0")/.."
RUNTIME=${RUNTIME:-$PWD/bin/berth-runtime}
DEMO=${BERTH_DEMO_DIR:-/var/tmp/berth-demo}

if [ ! -x "$DEMO/rootfs/bin/busybox" ]; then
	rm -rf "$DEMO.tmp" && mkdir -p "$DEMO.tmp/deb" "$DEMO.tmp/rootfs"
	deb=$(ls /var/cache/apt/archives/busybox-static_*.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		(cd "$DEMO.tmp/deb" && apt-get download busybox-static >/dev/null 2>&1)
		deb=$(ls "$DEMO.tmp"/deb/busybox-static_*.deb | tail -n 1)
	fi
	dpkg-deb -x "$deb" "$DEMO.tmp/deb/x"
	r="$DEMO.tmp/rootfs"
	mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/root"
	chmod 1777 "$r/tmp"
	cp "$DEMO.tmp/deb/x/bin/busybox" "$r/bin/busybox"
	for a in $("$r/bin/busybox" --list-full); do
		[ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
	rm -rf "$DEMO" && mkdir -p "$DEMO" && mv "$r" "$DEMO/rootfs" && rm -rf "$DEMO.tmp"
fi

if [ "$#" -eq 0 ]; then
	set -- sh -c 'echo hello from a berth container; echo hostname: $(hostname); echo pid: $$; id; ls /'
fi

if [ -z "${BERTH_DEMO_RUNTIME:-}" ]; then
	BERTH=${BERTH:-$PWD/bin/berth}
	IMAGE=berth-demo/busybox:latest
	if ! "$BERTH" image inspect "$IMAGE" >/dev/null 2>&1; then
		tar -C "$DEMO/rootfs" --numeric-owner -cf "$DEMO/rootfs.tar" .
		"$BERTH" import -c 'CMD ["/bin/sh"]' "$DEMO/rootfs.tar" "$IMAGE" >/dev/null
		rm -f "$DEMO/rootfs.tar"
	fi
	# A terminal only when there is one to give it.
	if [ -t 0 ] && [ -t 1 ]; then tty=-it; else tty=; fi
	exec "$BERTH" run --rm $tty --network none "$IMAGE" "$@"
fi

rm -f "$DEMO/config.json"
(cd "$DEMO" && "$RUNTIME" spec)
if [ -t 0 ] && [ -t 1 ]; then terminal=true; else terminal=false; fi
sed -i "s/\"terminal\": true/\"terminal\": $terminal/" "$DEMO/config.json"
# `spec` writes args as one line per element; replace the default ["sh"].
args=""
for a in "$@"; do
	# JSON-escape, then escape for sed's replacement text.
	esc=$(printf '%s' "$a" | sed 's/\\/\\\\/g; s/"/\\"/g' | sed 's/\\/\\\\/g; s/[|&]/\\&/g')
	args="$args${args:+, }\"$esc\""
done
sed -i "s|^\t\t\t\"sh\"\$|\t\t\t$args|" "$DEMO/config.json"
exec "$RUNTIME" run --bundle "$DEMO" "berth-demo-$$"
