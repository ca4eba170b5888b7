// Package caps names Linux capabilities and applies the capability sets and
// the user identity of an OCI process to the calling thread.
//
// It is imported by the container init (internal/runtime/initproc) and by the
// exec path of berth-runtime; it imports only the standard library,
// golang.org/x/sys/unix and the runtime-spec types.
//
// # Threads
//
// Credentials, the five capability sets, securebits (keepcaps) and
// no_new_privs belong to a thread, not to a process, and execve(2) keeps the
// calling thread's. berth-runtime links cgo, so syscall.AllThreadsSyscall is
// unavailable, and glibc's setuid family would broadcast to every thread.
// This package therefore changes only the calling thread, with raw syscalls.
//
// Precondition for every function that changes state: the caller has locked
// its goroutine to its OS thread (runtime.LockOSThread), keeps it locked until
// it calls execve from that same thread, and never unlocks it (so the Go
// runtime cannot hand the thread to another goroutine or reuse it).
//
// # Order
//
// The kernel checks each step against the credentials left by the previous
// one, so the init must call, in this order:
//
//  1. DropBounding(sets.Bounding): PR_CAPBSET_DROP needs CAP_SETPCAP in the
//     effective set, which a switch to a non-zero uid clears.
//  2. SwitchUser(uid, gid, groups, setgroups): PR_SET_KEEPCAPS=1 so permitted
//     survives the uid change, setgroups (unless the user namespace denies
//     it), setresgid, setresuid, PR_SET_KEEPCAPS=0.
//  3. Apply(sets): capset(2) sets effective, permitted and inheritable exactly
//     (a subset of the permitted set kept by step 2), then the ambient set is
//     cleared and each ambient capability raised.
//
// then the rest of the init (no_new_privs, seccomp) and execve.
//
// # Invariants
//
//   - Inheritable and ambient are exactly what the spec says, never what the
//     runtime happened to have (CVE-2022-29162): Apply overwrites inheritable
//     with capset and clears ambient before raising.
//   - A nil *specs.LinuxCapabilities means every set is empty, as runc does.
//   - A name that is not in the table below is an error naming it. A name in
//     the table whose number is above the running kernel's last capability
//     (/proc/sys/kernel/cap_last_cap) is ignored and reported to the caller,
//     who may warn, as runc does.
//   - An ambient capability that is not in both permitted and inheritable is
//     skipped, as runc skips (and warns about) an ambient raise the kernel
//     refuses. The kernel would refuse it with EPERM; Sets.Unraisable reports
//     such capabilities so the runtime can warn before it forks.
//   - DropBounding drops every capability the kernel knows that keep lacks,
//     including numbers newer than this table.
package caps
