// Package seccomp turns the runtime-spec's linux.seccomp section into a
// seccomp BPF program, loads it on the calling thread, and hands the
// SCMP_ACT_NOTIFY listener to the agent at listenerPath.
//
// It is imported by the container init (internal/runtime/initproc), by the
// exec path and by the `features` command of berth-runtime. Besides the
// standard library, golang.org/x/sys/unix and the runtime-spec types it
// imports github.com/seccomp/libseccomp-golang, which is cgo: the runtime
// links libseccomp.a statically (see the Makefile). Built without cgo, the
// package still compiles, Compile returns an error and Features reports
// seccomp as disabled.
//
// # Two steps
//
// Compile validates the section and has libseccomp generate the program
// (architectures, actions, syscall names and argument conditions), then
// exports it and frees the libseccomp context: a Filter is plain Go memory.
// Load installs it with one seccomp(2) call. Keeping libseccomp out of Load
// is what lets this package, not libseccomp, choose the filter flags; in
// particular libseccomp-golang always asks for SECCOMP_FILTER_FLAG_TSYNC
// and sets no_new_privs itself, and we want neither (below).
//
// # Threads
//
// The filter is loaded WITHOUT SECCOMP_FILTER_FLAG_TSYNC, so the kernel
// attaches it to the calling thread only; execve(2) keeps it, and the new
// program starts with that one thread. The other threads of the Go runtime
// stay unfiltered during the short window between Load and execve, so a
// profile that denies futex, mmap or clone cannot wedge the init before it
// reaches execve.
//
// Preconditions for Load, which the container init meets by construction:
//
//   - The calling goroutine is locked to its OS thread (runtime.LockOSThread)
//     for the rest of the process's life, and that same thread calls execve.
//     Otherwise the filter lands on a thread the Go scheduler may give to
//     another goroutine, and the program runs unfiltered.
//   - The thread has no_new_privs set, or CAP_SYS_ADMIN in its effective set
//     (in its user namespace): the kernel refuses a filter otherwise
//     (EACCES). Load never sets no_new_privs, because the spec's
//     process.noNewPrivileges decides that. So, as runc does: with
//     noNewPrivileges, set it and load the filter as late as possible, right
//     before execve; without it, load the filter before capabilities are
//     dropped (while CAP_SYS_ADMIN is still effective).
//   - Between Load and execve the thread makes only syscalls the profile
//     allows: every one of them is filtered.
//
// SECCOMP_FILTER_FLAG_TSYNC in the spec is accepted and not passed on: the
// container program cannot tell the difference (execve leaves one thread),
// and the kernel refuses TSYNC together with a notify listener.
//
// # Semantics shared with runc
//
// Profiles, Docker's first, are written against runc, so these follow it:
//
//   - A syscall name libseccomp does not know is skipped: profiles list
//     syscalls newer than the libseccomp they meet.
//   - A rule whose action equals the default action is skipped (libseccomp
//     refuses it, and it changes nothing).
//   - Conditions on distinct argument indexes are ANDed in one rule; when
//     some index appears twice, each condition becomes a rule of its own,
//     so they are ORed (opencontainers/runc#2735; moby's default profile
//     relies on it).
//   - SCMP_CMP_MASKED_EQ matches (arg & value) == valueTwo.
//   - errnoRet defaults to EPERM for SCMP_ACT_ERRNO and SCMP_ACT_TRACE and
//     is an error on any other action.
//   - The native architecture is always in the filter; syscalls of an
//     architecture not in the filter kill the thread (libseccomp's default).
//   - SCMP_ACT_NOTIFY cannot be the default action, nor the action for
//     sendmsg: the init itself makes those syscalls before the agent holds
//     the listener, and would wait forever for an answer.
//
// An unknown action, operator, architecture or flag is an error naming it.
//
// Not done (yet): runc's -ENOSYS stub, which makes syscalls newer than the
// profile fail with ENOSYS rather than the default errno.
package seccomp
