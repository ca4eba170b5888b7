// Package rootfs builds a container's filesystem view inside its new mount
// namespace: the spec's mounts, /dev, masked and read-only paths, and the
// switch to the new root with pivot_root(2).
//
// Invariants, all against a hostile image (SECURITY.md):
//
//   - Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT |
//     RESOLVE_NO_MAGICLINKS) from a descriptor of the rootfs, so a symlink in
//     the image can never lead a mount, a mkdir or a mknod out of the rootfs
//     (CVE-2021-30465, CVE-2024-45310). Missing directories are created one
//     component at a time beneath an already-resolved descriptor.
//   - Mounts land on the descriptor that was resolved (through
//     /proc/self/fd/N or move_mount(2)), never on a path looked up again,
//     so a path swapped between resolution and mount cannot redirect them.
//   - proc and sysfs destinations, masked paths and read-only paths may not
//     pass through any symlink, and what was mounted is checked with
//     fstatfs(2) to be the filesystem asked for (CVE-2019-19921,
//     CVE-2019-16884, CVE-2023-27561).
//   - Masked files are covered with the host's /dev/null, opened before
//     pivot_root and checked to be the character device 1:3
//     (CVE-2025-31133).
//
// Everything except PivotRoot and the final read-only remount of / runs
// before pivot_root, while the host's /proc is still reachable for
// /proc/self/fd paths.
//
// Importers: internal/runtime/initproc.
package rootfs
