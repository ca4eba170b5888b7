// Package inprocess is berth-runtime's container lifecycle (create, start,
// kill, pause, resume, delete) called as a library, with the signatures of
// the command-line client in internal/runtimeclient: what berth-shim runs
// in its own process when the container's runtime is berth-runtime,
// instead of executing the binary for each step.
//
// Each executed runtime command costs a process start (a Go binary with a
// C constructor) and a command line to parse, three of them (create,
// start, delete) on the way of every `berth run`. In process, they cost
// what the work costs. The contract stays the runc command line: the
// state under the root is the one berth-runtime writes (the engine still
// asks the binary for state, ps, stats and updates), runc and crun are
// driven through internal/runtimeclient as before, and exec, which joins
// the container's namespaces, is always the binary's.
//
// The process model and its protections are berth-runtime's: the
// container's init is a fresh execution of the berth-runtime binary, sealed
// against writes (internal/linux/selfexe.CloneFile, CVE-2019-5736), with
// only the descriptors it is given; the caller's process never enters the
// container's namespaces (joins by path happen on a thread that is thrown
// away). The parent and the init must come from one build: the sync
// protocol's version travels with the init (syncmsg.VersionEnv), and a
// mismatch fails the create with a message saying so.
//
// The caller's own children: the init, hook processes and helpers are
// started with os/exec and waited for by this package's callees. A caller
// that reaps every child itself (berth-shim is a subreaper) must not reap
// them while a call is in progress; the shim holds its reaper for the
// duration of each call.
//
// Importers: cmd/berth-shim only, so that the engine, which imports
// internal/runtimeclient, does not link the runtime (nor need cgo).
package inprocess
