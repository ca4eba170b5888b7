// Package rlimit maps the runtime-spec's POSIX resource limit names to the
// kernel's and applies process.rlimits to the calling process.
//
// It is imported by the container init and the exec path of berth-runtime;
// it imports only the standard library, golang.org/x/sys/unix and the
// runtime-spec types.
//
// Invariants:
//   - Resource limits belong to the process (all its threads), not to a
//     thread, and survive execve, so Apply may run on any thread before it.
//   - Apply goes through unix.Prlimit, which tells the Go runtime that
//     RLIMIT_NOFILE was set on purpose; a raw prlimit64 would let
//     syscall.Exec put back the soft limit Go saw at start-up.
//   - The whole list is validated (names, duplicates, soft <= hard) before
//     any limit changes, so a bad spec changes nothing.
//   - Raising a hard limit needs CAP_SYS_RESOURCE, which root on some hosts
//     lacks; the error then names the limit, the request and the host's
//     ceiling instead of a bare EPERM.
package rlimit
