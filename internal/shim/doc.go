// Package shim is berth-shim, the supervisor of one container, and the
// client the engine talks to it with.
//
// One shim runs per container, started by the engine with Spawn and then
// independent of it: a session of its own, "/" as working directory, stdio
// on /dev/null and shim.log, so that berthd can exit, restart or be
// SIGKILLed while its containers run on. The shim
//
//   - creates the container holding its stdio (pipes, or the pty master
//     the runtime sends over a console socket) through its Runtime: runc's
//     command line (internal/runtimeclient) for runc, crun or any such
//     binary; for berth-runtime, the runtime's own code run in the shim's
//     process (internal/runtimeclient/inprocess, wired by cmd/berth-shim),
//     which saves executing the runtime for create, start, kill and
//     delete, while the init is still a fresh execution of the sealed
//     berth-runtime binary;
//   - copies the output to the json-file log (internal/logs; docker's
//     format, capped and rotated) and to attached clients, and attached
//     clients' input to the container;
//   - is a child subreaper (PR_SET_CHILD_SUBREAPER), so the container's
//     init and every exec'd process become its children, and reaps them
//     (reaper.go: the only place that waits);
//   - records the init's exit in exit.json, atomically, with OOMKilled from
//     the memory cgroup's oom_kill counter, after the last output reached
//     the log;
//   - serves shim.sock (mode 0600, in the state directory, which is the
//     bundle) until Delete, so that an engine that restarts finds each
//     container's state, and exits after Delete has run `runtime delete`.
//
// The protocol on shim.sock is in protocol.go: one JSON request and one
// JSON response per connection, and framed streams for attach. It is
// hand-rolled over AF_UNIX, without net/http or even the net package,
// because a shim is paid for once per container. What creating the
// container leaves behind in the shim's process (the in-process runtime's
// threads, heap spans and encoding/json caches) the Go runtime does not
// give back; so an idle shim sheds it (shed.go): once the container has
// settled and only waits for its exit are in progress, the shim
// re-executes itself, the same process, and hands its next image what it
// serves. An idle shim then holds about 1 MiB of its own (5.7 MiB RSS,
// the rest the binary's pages, shared by every shim), against 2 MiB
// before it sheds.
//
// Signals sent to the shim are ignored, not forwarded: the engine signals
// the container through Kill.
//
// Files in the state directory: shim.sock, shim.pid, init.pid, exit.json
// (kept after Delete, for the engine), shim.log (the shim's own messages).
//
// Importers: cmd/berth-shim (Serve) and the engine (Spawn, Dial, Client,
// ReadExit). It imports the runtime client, the logs package and the
// console and cgroups kernel packages, never the runtime itself: the
// engine links this package.
package shim
