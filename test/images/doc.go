// Package images builds, offline, the OCI image layouts the image layer's
// tests pull, unpack, load, save and push: directories with oci-layout,
// index.json and blobs/sha256/, as `skopeo copy oci:DIR` and
// go-containerregistry's pkg/v1/layout read them.
//
//	Busybox        test/fixture's busybox image (one gzip layer)
//	Layered        busybox plus five layers (one zstd) full of the cases an
//	               unpacker gets wrong: whiteouts, opaque directories,
//	               hardlinks, symlinks, xattrs and file capabilities, owners,
//	               setuid, devices, fifos, long and non-ASCII names; a
//	               Docker config with a healthcheck and a real history;
//	               LayeredExpect describes the merged view it must unpack to
//	MultiPlatform  an index of linux/amd64, linux/arm64/v8 and linux/arm/v7
//	               and a buildx-style attestation manifest
//	DockerSchema2  busybox with Docker's media types
//	Minbase        a `debootstrap --variant=minbase bookworm` rootfs as one
//	               layer
//
// Expect (LayeredExpect's type) describes a merged view path by path, and
// Expect.Verify checks a directory against it: an unpacked image, a
// mounted snapshot, a container's root. Archive turns a layout into a
// docker-archive (as `docker save` of docker 25+ writes it) or an
// oci-archive tarball; Push uploads a layout to a registry.
//
// Invariants:
//   - Every image is deterministic: fixed mtimes, owners, order and
//     compressor settings, so building it twice gives the same digests.
//     Minbase is the exception across machines (debootstrap's output
//     depends on the mirror's day), and is built once per machine.
//   - Images are cached under test/fixture's cache root ($BERTH_TEST_CACHE,
//     else /var/cache/berth-test for root) as images-<kind>-<key12>/, built
//     with internal/dircache (build beside, rename into place) and keyed by
//     a recipe version and everything they are built from; entries unused
//     for a week are pruned. Cached layouts are shared: never write to one.
//   - A missing prerequisite (no debootstrap, not root, no busybox-static)
//     skips the test with the reason, unless BERTH_TEST_REQUIRE_FIXTURES is
//     set, when it fails it, as test/fixture does.
//
// hack/test-images.sh builds every image and serves them from Debian's
// docker-registry on 127.0.0.1 (through TestPushAll).
//
// Imported only by tests.
package images
