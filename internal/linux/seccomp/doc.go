// Package seccomp turns the runtime-spec's linux.seccomp section into a
// seccomp BPF program and its seccomp(2) flags, and prepares the hand-over
// of the SCMP_ACT_NOTIFY listener to the agent at listenerPath. It loads
// nothing itself.
//
// Importers: internal/runtime (Compile, Encoded, DialListener,
// ProcessState) and internal/runtime/cli (Features, for the `features`
// command). Besides the standard library, golang.org/x/sys/unix and the
// runtime-spec types it imports github.com/seccomp/libseccomp-golang, which
// is cgo: the runtime links libseccomp.a statically (see the Makefile).
// Built without cgo, the package still compiles, Compile returns an error
// and Features reports seccomp as disabled.
//
// # Two steps, two processes
//
// Compile validates the section and has libseccomp generate the program
// (architectures, actions, syscall names and argument conditions), then
// exports it and frees the libseccomp context: a Filter is plain Go memory.
// The runtime compiles once, before anything is created, so a bad profile
// fails early, and puts the Encoded program and flags into the plan of the
// container-side stage (internal/runtime/initstage, C), which installs it
// with one seccomp(2) call. Keeping libseccomp out of the loading is what
// lets this package, not libseccomp, choose the filter flags; in
// particular libseccomp-golang always asks for SECCOMP_FILTER_FLAG_TSYNC
// and sets no_new_privs itself, and we want neither (below).
//
// # What the stage does with the program
//
// The stage runs before the Go runtime of its process starts, so the
// process has one thread when the filter is loaded; the filter is loaded
// without TSYNC and execve(2) keeps it. The kernel refuses a filter
// (EACCES) unless the thread has no_new_privs or CAP_SYS_ADMIN in its
// effective set (in its user namespace), and no_new_privs is the spec's
// process.noNewPrivileges to decide, never set for the filter's sake. So,
// as runc does: with noNewPrivileges, the stage sets it and loads the
// filter last, right before execve; without it, it loads the filter before
// capabilities are dropped (while CAP_SYS_ADMIN is still effective), and
// the rest of its set-up runs under the filter, which is why some
// SCMP_ACT_NOTIFY rules are refused (below).
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
//     sendmsg: the stage itself makes those syscalls before the agent holds
//     the listener, and would wait forever for an answer.
//
// An unknown action, operator, architecture or flag is an error naming it.
//
// Not done (yet): runc's -ENOSYS stub, which makes syscalls newer than the
// profile fail with ENOSYS rather than the default errno.
package seccomp
