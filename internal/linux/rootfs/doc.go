// Package rootfs holds what the runtime and the engine need to know about a
// container's filesystem from Go: the spec's mount options split into
// mount(2) flags, mount_setattr(2) attributes, propagation and data
// (ParseOptions, Attrs, Propagation), the default devices, the description
// of the host's cgroup hierarchies a "cgroup" mount shows (CgroupView), and
// path resolution inside a rootfs that a hostile image cannot escape
// (OpenInRoot, MkdirAllInRoot, PrepareTarget).
//
// The container's own set-up (its mounts, /dev, masked and read-only paths,
// pivot_root) is done by the C stage of the runtime binary
// (internal/runtime/initstage) from a plan the runtime builds with this
// package, under the same rules as the resolution here, all against a
// hostile image (SECURITY.md):
//
//   - Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT |
//     RESOLVE_NO_MAGICLINKS) from a descriptor of the rootfs, so a symlink in
//     the image can never lead a mount, a mkdir or a mknod out of the rootfs
//     (CVE-2021-30465, CVE-2024-45310). Missing directories are created one
//     component at a time beneath an already-resolved descriptor.
//   - A target whose last component is a dangling symlink is created where
//     the symlink points, inside the rootfs (expand), and then opened with
//     no symlink allowed, so a symlink planted in between makes the call
//     fail instead of escape.
//
// Importers: internal/runtime (plans), internal/engine (volume views),
// internal/specconv (the image's /etc files), internal/runtime/cli
// (features).
package rootfs
