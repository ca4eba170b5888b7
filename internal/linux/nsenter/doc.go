// Package nsenter joins user, mount and time namespaces, and makes a new
// time namespace, before the Go runtime starts.
//
// The kernel refuses setns(2) into a user or mount namespace from a
// multi-threaded process (EINVAL), and into a time namespace as well (EUSERS);
// a Go program has several threads before main runs. So a small C constructor,
// linked into every binary that imports this package, runs while the process
// is still single-threaded. It acts on two environment variables and removes
// them:
//
//   - _BERTH_NSENTER, in the form "fd:type,fd:type,...": it joins each
//     namespace in the order given and closes each descriptor;
//   - _BERTH_NEWTIME (see NewTimeEnv): after the joins, it unshares a new
//     time namespace, writes the variable's value, the clock offsets, to
//     /proc/self/timens_offsets, and enters the namespace with setns. A time
//     namespace takes offsets only before any process is in it, and a Go
//     process cannot enter one once its threads run; older kernels (6.1)
//     also refuse to clone a process that shares its parent's memory, as Go
//     starts processes, into another time namespace, so the runtime cannot
//     make one for its child to be born in. The process that enters it here
//     is the container's init (or the user-namespace stage process that
//     clones it, internal/runtime/stage.go), and everything it starts is in
//     the namespace.
//
// If a step fails the constructor writes a framed error message naming the
// step to the descriptor named by _BERTH_SYNCFD (the runtime's sync socket,
// see internal/runtime/syncmsg) and exits with status 1.
//
// The constructor does nothing else: no allocation of Go state, no parsing of
// the container's configuration. Its priority is 101, so it runs before the
// constructor of the runtime's C stage (internal/runtime/initstage, 102),
// which, for the processes the runtime starts as "init" or "exec-child",
// does the rest of the container's set-up from a plan and execve's the
// user's program without the Go runtime ever starting. In any other
// process the Go program then starts as usual.
//
// Importers: internal/runtime (Env, NewTimeEnv: what the constructor is
// asked to do) and internal/runtime/initstage (for the constructor alone,
// so it is linked into every binary the stage runs in). Through them it is
// in cmd/berth-runtime and cmd/berth-shim (which runs the runtime in
// process).
package nsenter
