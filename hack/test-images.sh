#!/bin/sh
# Builds berth's offline test images (test/images) and serves them from a
# real registry: Debian's docker-registry on 127.0.0.1:${PORT:-5000}, its
# storage in a temporary directory (or in $REGISTRY_DIR, which is kept).
#
#   hack/test-images.sh              build, push, print the references, serve until Ctrl-C
#   hack/test-images.sh --no-serve   build and push, then stop
#
# The images are cached under test/fixture's cache root, so only the first
# run on a machine is slow (the Debian minbase image runs debootstrap from
# the apt mirror). Needs root: debootstrap does, and docker-registry is
# installed through apt when missing. Never listens beyond 127.0.0.1.
set -eu

serve=1
case "${1:-}" in
--no-serve) serve=0 ;;
"") ;;
*)
	echo "usage: $0 [--no-serve]" >&2
	exit 2
	;;
esac
port=${PORT:-5000}
addr="127.0.0.1:$port"
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "$0: run as root (debootstrap builds the minbase image)" >&2
	exit 1
fi
if ! command -v docker-registry >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-test-images.XXXXXX")
storage=${REGISTRY_DIR:-$tmp/storage}
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$tmp/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: $addr
EOF
docker-registry serve "$tmp/config.yml" >"$tmp/registry.log" 2>&1 &
pid=$!

# Wait for the registry's API root; a registry that died (the port in use)
# is reported with its log.
up() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null "http://$addr/v2/" 2>/dev/null
	else
		wget -q -O /dev/null "http://$addr/v2/" 2>/dev/null
	fi
}
i=0
until up; do
	if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 150 ]; then
		echo "$0: docker-registry did not start on $addr:" >&2
		cat "$tmp/registry.log" >&2
		exit 1
	fi
	i=$((i + 1))
	sleep 0.1
done

echo "registry on $addr (storage $storage); building and pushing the images"
BERTH_TEST_IMAGES_REGISTRY=$addr BERTH_TEST_REQUIRE_FIXTURES=1 \
	go test -count=1 -timeout 30m -run '^TestPushAll$' -v ./test/images

echo
echo "images:"
for ref in berth-test/busybox:latest berth-test/layered:latest berth-test/multi:latest \
	berth-test/schema2:latest berth-test/minbase:bookworm; do
	echo "  $addr/$ref"
done

if [ "$serve" -eq 1 ]; then
	echo "serving until Ctrl-C"
	wait "$pid"
fi
