// Package cgroups places a container's processes in cgroups and acts on
// them as a group: list, freeze, thaw, signal, destroy.
//
// It speaks the cgroupfs interface directly on every host layout the
// kernel allows: cgroup v1 only (Legacy), v1 controllers beside a cgroup2
// mount (Hybrid, as on systemd's hybrid hosts and on the berth build
// machines) and cgroup2 only (Unified). The layout is detected at run time
// from /proc/self/mountinfo, never assumed, and any controller may sit on
// either side of a hybrid host.
//
// A container's cgroup is one directory per hierarchy. The Manager records
// them in a map keyed the way runc's state.json keys them: the v1
// controller name ("cpu", "cpuacct", "name=systemd", ...; co-mounted
// controllers share one directory) and "" for the cgroup2 hierarchy. Load
// rebuilds a Manager from that map alone, so later invocations of the
// runtime (kill, pause, delete) need not detect anything.
//
// Invariants:
//   - A Manager never resolves to the root of a hierarchy or above it:
//     cgroupsPath is cleaned and rejected when it names the root or climbs
//     out of it with "..". Destroy removes a whole subtree, so this is what
//     keeps "delete" from emptying the host's cgroup tree.
//   - Destroy removes only the container's directory and its descendants,
//     never the parents Apply created on the way.
//   - Nothing here starts processes or keeps descriptors open between calls.
//
// Not here yet: resource limits (a Set(*specs.LinuxResources) method on
// Manager), statistics and the systemd driver; New reports the latter as
// ErrSystemdUnsupported.
//
// Imported by the runtime (internal/runtime and cmd/berth-runtime), which
// is copied on every container start: keep this package to the standard
// library and golang.org/x/sys.
package cgroups
