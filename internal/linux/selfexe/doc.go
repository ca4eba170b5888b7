// Package selfexe gives the runtime a copy of its own binary that a
// container cannot overwrite.
//
// CVE-2019-5736: a process inside a container opened /proc/PID/exe of the
// runtime while the runtime was executing in the container's namespaces and
// rewrote the host's runtime binary through it. The runtime therefore never
// enters a container as the file on disk. It re-executes itself from one of
// two stand-ins that no write can reach:
//
//   - the binary seen through a read-only overlayfs that is mounted nowhere
//     (fsopen/fsmount: only the runtime holds it). Writes fail with EROFS
//     whatever the caller's privileges, and the page cache of the real file
//     is shared, so nothing is copied: this costs a few syscalls per
//     container instead of copying megabytes. Overlayfs without an upper
//     layer needs two lower ones: the binary's directory on top, and an
//     empty one below. That is a detached empty tmpfs where the kernel
//     takes one; kernels whose clone_private_mount refuses a mount that is
//     in no mount namespace (6.1 does, with EINVAL and "overlayfs: failed
//     to clone lowerpath"; 6.18 does not) get EmptyDir instead, a directory
//     in the host's mount namespace that the runtime makes and uses only
//     while it is root's, writable by no one else and empty. Its content
//     could not reach the runtime anyway: the binary's name is found in the
//     top layer, and the file opened is checked to be the running binary;
//   - where overlayfs cannot be mounted (an unprivileged user namespace, a
//     kernel without it), a memfd holding a copy of the binary, sealed
//     against every write.
//
// Either way /proc/PID/exe of anything the runtime runs in a container
// points at a file no one can change.
//
// Importers: internal/runtime (the parent side of create and exec).
package selfexe
