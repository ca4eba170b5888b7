#!/bin/sh
# Builds the upstream CNI plugins berth's networks use (bridge, host-local,
# loopback, portmap, firewall, tuning) from github.com/containernetworking/plugins
# through the Go module proxy, into berth's own plugin directory.
#
#   hack/cni-plugins.sh                 build into bin/cni (make build, make test)
#   hack/cni-plugins.sh --install DIR   build, then install into DIR
#                                       (make install: $(DESTDIR)$(PREFIX)/lib/berth/cni)
#
# Cached: a stamp in the directory names the plugins' version and the Go
# toolchain that built them, so a second run with both unchanged returns at
# once. berthd looks for the plugins in bin/cni beside its binary, then
# ../lib/berth/cni (internal/network.DefaultPluginDirs).
set -eu

version=v1.10.0
plugins="main/bridge ipam/host-local main/loopback meta/portmap meta/firewall meta/tuning"
GO=${GO:-go}
cd "$(dirname "$0")/.."
out=$(pwd)/bin/cni

install_dir=""
case "${1:-}" in
--install)
	[ $# -eq 2 ] || { echo "usage: $0 [--install DIR]" >&2; exit 2; }
	install_dir=$2
	;;
"") ;;
*)
	echo "usage: $0 [--install DIR]" >&2
	exit 2
	;;
esac

stamp="$version $($GO env GOVERSION) $plugins"
fresh=1
[ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] || fresh=0
for p in $plugins; do
	[ -x "$out/${p#*/}" ] || fresh=0
done

if [ $fresh -eq 0 ]; then
	mkdir -p "$out"
	rm -f "$out/.stamp"
	for p in $plugins; do
		# GOFLAGS from the environment (-mod=vendor, say) must not apply
		# to a module outside berth's; the plugins are static (no cgo) so
		# they run whatever libc the host has.
		GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$out" \
			$GO install -trimpath -ldflags '-s -w' \
			"github.com/containernetworking/plugins/plugins/$p@$version"
	done
	echo "$stamp" >"$out/.stamp"
fi

if [ -n "$install_dir" ]; then
	mkdir -p "$install_dir"
	for p in $plugins; do
		install -m 0755 "$out/${p#*/}" "$install_dir/${p#*/}"
	done
fi
