// Package initstage is the container side of berth-runtime: the container's
// init, from its namespaces' creation to the execve of the user's program,
// and the process `exec` starts in a running container.
//
// It is C (plan.c, rootfs.c with resolve.c, process.c with privileges.c,
// pty.c, hooks.c), run from an ELF constructor of the sealed runtime binary
// (internal/linux/selfexe) before the Go runtime starts, after
// internal/linux/nsenter's constructor has joined the namespaces the
// process must be in. A second Go runtime per
// container, whose start-up is most of a container's cost on some hosts,
// is never started: the process the runtime spawns as "init" or
// "exec-child" ends in the user's program or in an error, never in Go.
//
// What needs judgement stays in Go: the runtime (internal/runtime) reads
// and validates the spec, resolves mount options, devices, capabilities,
// rlimits, process attributes and hook states, compiles the seccomp filter,
// and writes it all as a Plan: a flat list of operations, each naming the
// step it belongs to. The stage receives the plan on the sync socket
// (internal/runtime/syncmsg framing) and executes it in order; what it
// decides itself is only what it can see at run time: what the
// filesystem beneath the rootfs holds and what the kernel answers.
//
// The security of the container's set-up lives here: every mount target is
// resolved beneath the rootfs with openat2 (RESOLVE_IN_ROOT, or no symlinks
// at all for /proc, /sys and cgroup hierarchies) and mounted through its
// descriptor; procfs and sysfs targets are checked to be those filesystems;
// the exec fifo is reopened through a private, detached procfs; the process
// is not dumpable until execve; and every descriptor but stdio and the
// preserved ones is close-on-exec at execve.
//
// Errors go to the runtime as syncmsg error messages naming the step; once
// the init waits on the exec fifo, into the fifo, where `start` reads them.
//
// Importers: internal/runtime (Plan) and internal/runtime/cli (the kind
// names). Every binary that links internal/runtime carries the constructor
// (berth-shim too); it acts only in a process started as "init" or
// "exec-child".
package initstage
