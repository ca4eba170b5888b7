// Package cgroups places a container's processes in cgroups, limits their
// resources, reads their usage and acts on them as a group: list, freeze,
// thaw, signal, destroy.
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
// runtime (kill, pause, update, events, delete) need not detect anything:
// each resource goes to the v1 directory of its controller when the map
// has one, else to the cgroup2 directory when the controller is enabled
// there (its cgroup.controllers).
//
// Files by concept:
//   - manager.go, layout.go, path.go, proccgroup.go: the Manager, layout
//     detection, cgroupsPath resolution; freezer.go, kill.go, destroy.go
//     the group operations; cpuset.go, unified.go cgroup2 and cpuset
//     set-up at Apply.
//   - resources.go: Set and its warnings, pids, net_cls/net_prio, rdma;
//     memory.go, cpu.go, cpuset.go, blkio.go, hugetlb.go, unified.go the
//     other linux.resources fields, v1 and v2 side by side.
//   - devices.go: device rules; devices_v1.go the v1 controller;
//     devices_ebpf.go the cgroup2 eBPF program, assembled by hand; bpf.go
//     the bpf(2) calls that load and attach it.
//   - stats.go, stats_v1.go, stats_v2.go, stats_parse.go: Stats, in the
//     shape of runc's `events --stats`.
//   - oom.go: OOMEvents, for `events`.
//
// Warnings: Set returns, beside its error, warnings for spec fields the
// host cannot honour and that are safe to drop (kernel memory limits,
// swappiness and disableOOMKiller on cgroup2, CFQ leaf weights, a v1
// device rule that cannot narrow a wildcard). The runtime logs them, as
// runc logs its own; everything else that cannot be applied is an error
// naming the spec field, wrapping errors.ErrUnsupported when the host
// lacks the controller.
//
// Invariants:
//   - A Manager never resolves to the root of a hierarchy or above it:
//     cgroupsPath is cleaned and rejected when it names the root or climbs
//     out of it with "..". Destroy removes a whole subtree, so this is what
//     keeps "delete" from emptying the host's cgroup tree.
//   - Destroy removes only the container's directory and its descendants,
//     never the parents Apply created on the way.
//   - Set writes only control files inside the container's directories:
//     unified keys are plain file names, and those that place or kill
//     processes are refused.
//   - Nothing here starts processes. Descriptors live only within a call,
//     except those of an OOMEvents watch, held until its stop function.
//
// The systemd driver is the sub-package cgroups/systemd: it wraps this
// package's Manager, so New here only refuses systemd paths
// (ErrSystemdUnsupported) and systemd.New chooses the driver.
//
// Not here yet: the misc controller, and cgroup2 device programs on
// 32-bit machines.
//
// Imported by the runtime (internal/runtime and cmd/berth-runtime), which
// is copied on every container start: keep this package to the standard
// library, golang.org/x/sys and the runtime-spec types. The eBPF device
// program is assembled here for that reason rather than with cilium/ebpf.
package cgroups
