// Package runtimeclient drives an OCI runtime through runc's command line:
// berth-runtime, runc and crun alike. It is the seam DESIGN.md keeps between
// the engine (through the shim) and the kernel: everything above it speaks
// to a Runtime, nothing above it execs a runtime binary.
//
// Every command runs as
//
//	RUNTIME [--root ROOT] [--systemd-cgroup] --log LOGFILE --log-format json COMMAND ...
//
// and a failure becomes an *Error carrying the runtime's own words: the last
// "error" (or "fatal") entry of the JSON log, where runc, crun and
// berth-runtime all put them, else the command's stderr, else its exit
// status. Error matches ErrNotExist, ErrExist and ErrNotRunning through
// errors.Is, by the container's state directory under ROOT where that
// settles it and by the runtimes' messages otherwise.
//
// Nothing touches the disk: the log, captured output and process.json live
// in memfds, handed to the runtime as /proc/PID/fd/N paths. (Inheriting
// them as descriptors would not do: `create` and `exec` pass their
// descriptors to the container.)
//
// Process lifecycle: a command's process is started and waited for by a
// Starter; the default is os/exec. The shim is a child subreaper that reaps
// every child itself, which would steal the exit status from os/exec, so it
// supplies its own Starter that waits through its reaper.
//
// Importers: the shim (create, start, kill, exec, delete...) and the engine
// (state, list, ps, stats, events, update...). It imports only the standard
// library, x/sys, the runtime-spec types and the cgroups statistics types.
package runtimeclient
