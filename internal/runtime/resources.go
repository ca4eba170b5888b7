package runtime

import (
	"github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"}
}

// defaultDeviceRules are the devices every container with its own /dev
// gets (internal/linux/rootfs creates them) and must be able to use:
// null, zero, full, random, urandom, tty, the pty multiplexer and the pty
// slaves.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	devRule("c", 1, 3), devRule("c", 1, 5), devRule("c", 1, 7), devRule("c", 1, 8),
	devRule("c", 1, 9), devRule("c", 5, 0), devRule("c", 5, 2), devRule("c", 136, -1),
}

// cgroupResources is what the container's cgroup gets: the spec's
// resources, with the device rules completed as runc does. When the spec
// restricts devices, the devices every container's /dev has (created by
// internal/linux/rootfs) are allowed after the spec's rules, so that a
// deny-all list does not break /dev/null. Devices the spec lists in
// linux.devices are created but get no rule of their own: access to them
// is what the spec's rules say (docker and containerd add one per --device).
func cgroupResources(spec *specs.Spec) *specs.LinuxResources {
	if spec.Linux.Resources == nil {
		return nil
	}
	r := *spec.Linux.Resources
	if len(r.Devices) == 0 {
		return &r
	}
	devs := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	r.Devices = append(devs, defaultDeviceRules...)
	return &r
}
