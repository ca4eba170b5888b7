// Package volume is berth's local volume driver: named and anonymous
// volumes kept as directories under <data-root>/volumes/<name>/_data,
// docker's layout, with docker's create, list, inspect, remove and prune
// semantics and its Engine API types (volume.Volume).
//
// A volume is a directory and a small record beside it
// (<name>/volume.json: creation time, labels, driver options), written
// atomically. Driver options follow docker's local driver: type, device
// and o describe a mount (tmpfs, a bind of a host directory, any file
// system mount(8) takes) made on _data when the first container using the
// volume starts, and undone when the last one stops.
//
// The store does not know containers. The engine tells it which container
// holds a reference to which volume (Acquire, Release); a referenced
// volume cannot be removed or pruned ("volume is in use"), and a volume
// with no reference is dangling. References live in memory: the engine
// re-acquires them from its container records when it starts.
//
// Invariants:
//   - Names are validated before they become paths ([a-zA-Z0-9][a-zA-Z0-9_.-]+,
//     docker's rule), so a name never climbs out of the volumes directory.
//   - A volume's directory is removed only after anything mounted on its
//     _data is unmounted, so removal never deletes through a bind mount
//     into the host.
//   - Errors carry internal/errdefs' classes (ErrNotFound, ErrInvalid,
//     ErrConflict) so the API server maps them with its one mapping.
//
// Importers: internal/engine.
package volume
