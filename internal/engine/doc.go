// Package engine runs containers for berthd: docker's container model
// (create, start, stop, kill, restart, pause, rename, update, wait,
// remove, inspect, list, logs, attach, exec, top, stats, diff, export,
// cp, commit, prune) and its volumes, above the image store and one berth-shim per
// running container. Its methods map one to one onto the Docker Engine
// API's container and volume endpoints and take and return that API's
// own types (container.Config, container.HostConfig,
// container.InspectResponse, container.Summary, volume.Volume, ...);
// only the options of an endpoint that has no type of its own get a
// small struct here (StopOptions, RemoveOptions, LogsOptions, ...).
//
// A container is:
//   - a record, <data-root>/containers/<id>/container.json, written
//     atomically on every change: docker's Config (merged with the
//     image's) and HostConfig, its state, mounts and restart bookkeeping;
//     beside it the json-file log and the generated hostname, hosts and
//     resolv.conf;
//   - a writable snapshot keyed by its ID over the image's top layer,
//     mounted at <exec-root>/containers/<id>/rootfs while it is created
//     or runs;
//   - while it runs, a berth-shim (docs/engine.md) that holds its stdio,
//     writes its log and exit status and outlives berthd. The engine
//     reaches the runtime only through the shim and the runtime's command
//     line, so runc and crun work as well as berth-runtime.
//
// Failures are docker's too: a process that cannot be started (a
// program not there or not executable) gives dockerd's message and exit
// code (127, 126) whichever runtime reported it (starterr.go); a
// container that could not start stays "created" with them, a --rm one
// is removed. docker diff leaves out what docker keeps in its init
// layer (changes.go). --init runs berth-init (cmd/berth-init) as PID 1.
//
// Live restore: New re-attaches to the shims that still run and records
// the exits that happened while no engine watched (from the shim, or its
// exit.json), then applies restart policies as dockerd does at start.
// Close lets go of the shims and leaves the containers running.
//
// Networking (network.go): "bridge" (the default) and user-defined
// networks give the container a network namespace of its own, attached
// through internal/network (CNI) between the shim's create and the
// process's start and released whenever the run ends; "none" gives a
// namespace with loopback only, "host" the host's, "container:<id>"
// another container's. Without a network manager (Config.Network),
// bridge has loopback only. A container's mutex may be held while the
// network manager's is taken, never the reverse.
//
// Concurrency: each container has a mutex (ctr.mu) guarding its record
// and live state; the engine's mutex (Engine.mu) guards the maps of
// containers, names and execs. Lock order: a container's mutex may be
// held while taking the engine's, never the reverse. Exit monitors,
// restart timers and health checks are goroutines that end with the
// engine's context; Close waits for them.
//
// Security (SECURITY.md): docker cp resolves every container path with
// openat2(RESOLVE_IN_ROOT) from the container's root — /proc/PID/root
// of its init (checked by pidfd and cgroup) or, for a stopped
// container, its root with volumes bound in a mount namespace of a
// throwaway thread — and extracts with internal/archive, so neither a
// symlink nor a race leads out of the container (CVE-2018-15664).
// Volumes are filled from the image the same way. Errors carry
// internal/errdefs' classes (not found, invalid, conflict, not
// modified).
//
// Importers: cmd/berthd and the API server.
package engine
