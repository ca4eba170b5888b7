// Package systemd is the systemd cgroup driver (the runtime's
// --systemd-cgroup, as in runc and crun): systemd, as PID 1, owns every
// cgroup on its host, so a container's cgroup is a transient unit that
// systemd creates, and systemd is told the limits it has settings for.
//
// Which driver: New is the runtime's one entry point. It returns the
// systemd driver when asked (--systemd-cgroup) or when linux.cgroupsPath
// has the "slice:prefix:name" form, and the cgroupfs Manager of package
// cgroups otherwise. Where systemd is not PID 1, or its D-Bus sockets are
// absent, asking for it fails with an error wrapping
// cgroups.ErrSystemdUnsupported that says which.
//
// cgroupsPath: "system.slice:berth:abc" is the scope berth-abc.scope in
// system.slice (cgroup /system.slice/berth-abc.scope); an empty slice is
// system.slice; a slice "a-b.slice" nests as a.slice/a-b.slice; a name
// ending in ".slice" makes the unit a slice; "" is
// "system.slice:berth:<id>". See unit.go.
//
// The Manager is two halves (manager.go):
//   - systemd, over D-Bus (dbus.go, whose diagram shows the calls): Apply
//     starts the unit with the process in it (StartTransientUnit with
//     PIDs, Slice, Delegate=yes, DefaultDependencies=no) and waits for
//     the job; Set sends the limits systemd has properties for
//     (properties.go: MemoryMax or MemoryLimit, TasksMax, CPUWeight or
//     CPUShares, CPU quota and period, AllowedCPUs/AllowedMemoryNodes,
//     IOWeight or BlockIOWeight, DevicePolicy/DeviceAllow); Destroy
//     stops the unit and waits.
//   - a cgroupfs Manager on the unit's directories for everything else:
//     the exact limit values (written after systemd's, as in runc), the
//     limits systemd has no setting for, processes, freezing, signals,
//     stats and OOM events, and the v1 hierarchies systemd does not
//     manage (freezer, net_cls, ...).
//
// State across runtime invocations: the unit name (UnitName) and Paths.
// The runtime stores both after Apply; Load(unit, paths) rebuilds the
// Manager, and Load("", paths) is cgroups.Load. The unit name is kept
// out of the Paths map on purpose: that map is read as directories by
// the cgroupfs Manager and by the container's cgroup mount.
//
// Invariants:
//   - A container never joins a live unit it did not start: Apply fails
//     when the unit exists and has not failed.
//   - Destroy never makes systemd kill: a unit that still has processes
//     is left running and reported (EBUSY), as cgroupfs reports a busy
//     directory.
//   - What systemd is told never grants less than the spec (its rounding
//     and its device list err wide); cgroupfs then writes the exact
//     values, so the kernel enforces the spec.
//   - Each operation opens its own D-Bus connection and closes it: a
//     Manager holds no descriptor between calls.
//
// Not here: systemd user instances (rootless), which need the session
// bus and a user slice.
//
// Imported by the runtime. Unlike the other internal/linux packages it
// needs D-Bus: github.com/godbus/dbus/v5 and
// github.com/coreos/go-systemd/v22/dbus, nothing else. It imports package
// cgroups for the cgroupfs half, so cgroups cannot import it; that is why
// the choice of driver lives here.
package systemd
