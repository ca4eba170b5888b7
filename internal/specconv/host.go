package specconv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/internal/linux/rlimit"
	"golang.org/x/sys/unix"
)

// Host is what the host offers containers. DetectHost fills it for the
// running host; the engine may then adjust the policy fields (the ones
// that say what the engine wants rather than what the host has).
type Host struct {
	// CgroupV2 is true on a cgroup2-only host, where containers get a
	// private cgroup namespace by default.
	CgroupV2 bool
	// SwapLimit tells whether the memory controller can limit swap
	// (memory.memsw.* on v1, memory.swap.max on v2); without it docker
	// drops --memory-swap with a warning.
	SwapLimit bool
	// SystemdCgroup names cgroups in systemd's "slice:prefix:name" form.
	SystemdCgroup bool
	// CgroupParent is the engine's parent cgroup for containers:
	// "/berth" (cgroupfs) or "system.slice" (systemd) by default.
	CgroupParent string

	// Capabilities are the capabilities the engine holds in its bounding
	// set: "ALL" and --privileged mean these, and a --cap-add outside
	// them is refused, as docker does.
	Capabilities []string

	// AppArmor and SELinux tell whether the host enforces them;
	// AppArmorProfile is the profile the engine loaded for containers.
	AppArmor        bool
	AppArmorProfile string
	SELinux         bool

	// TimeNamespace gives containers a time namespace (SECURITY.md). The
	// engine clears it for runtimes that do not know the namespace.
	TimeNamespace bool

	// OCIVersion is the runtime-spec version written in specs, for a
	// runtime that refuses specs newer than it knows (crun 1.8 refuses
	// 1.2); empty means the version berth's types are (specs.Version).
	OCIVersion string

	// NumCPU is the number of CPUs containers may use (docker's --cpus
	// ceiling); OnlineCPUs and OnlineMems the cpusets of the host, in
	// the kernel's list format ("0-3,6").
	NumCPU     int
	OnlineCPUs string
	OnlineMems string

	// Hostname is the host's, for containers sharing its network or UTS
	// namespace.
	Hostname string

	// ThermalThrottle are the /sys/devices/system/cpu/cpuN/thermal_throttle
	// directories the host has: they are masked too (GHSA-6fw5-f8r9-fgfm).
	ThermalThrottle []string

	// RlimitHard are the engine's hard resource limits, keyed like the
	// spec ("RLIMIT_NOFILE"). Without CanRaiseRlimits (CAP_SYS_RESOURCE)
	// a container cannot be given more, and Spec says so instead of
	// leaving the runtime to fail with EPERM.
	RlimitHard      map[string]uint64
	CanRaiseRlimits bool

	// DefaultSysctls are the sysctls docker sets in every container with
	// a network namespace of its own, limited to those the kernel has:
	// ping sockets for every group, and unprivileged binds below 1024.
	DefaultSysctls map[string]string

	// NoNewPrivileges is the engine's default for no_new_privs
	// (dockerd --no-new-privileges); --security-opt overrides it.
	NoNewPrivileges bool

	// DevDir is the host's /dev, walked for --privileged; "" means "/dev".
	DevDir string
}

// rlimitNames are the limits whose ceilings DetectHost records.
var rlimitNames = []string{
	"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
	"RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
	"RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
}

// DetectHost describes the running host and the engine's own privileges.
func DetectHost() (*Host, error) {
	h := &Host{NumCPU: runtime.NumCPU(), RlimitHard: map[string]uint64{}}
	layout, err := cgroups.Detect()
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	h.CgroupV2 = layout.Mode == cgroups.Unified
	h.CgroupParent = "/berth"
	if mem, ok := layout.HierarchyOf("memory"); ok {
		if mem.Unified {
			h.SwapLimit = true // cgroup2's memory controller always has memory.swap.max
		} else if _, err := os.Stat(filepath.Join(mem.Mountpoint, "memory.memsw.limit_in_bytes")); err == nil {
			h.SwapLimit = true
		}
	}

	cur, err := caps.Current()
	if err != nil {
		return nil, fmt.Errorf("read the engine's capabilities: %w", err)
	}
	last, err := caps.LastCap()
	if err != nil {
		return nil, err
	}
	for n := 0; n <= last && n <= caps.MaxKnown; n++ {
		if cur.Bounding.Has(n) {
			h.Capabilities = append(h.Capabilities, caps.Name(n))
		}
	}
	if n, ok := caps.Number("CAP_SYS_RESOURCE"); ok {
		h.CanRaiseRlimits = cur.Effective.Has(n)
	}

	h.AppArmor = appArmorEnabled()
	h.SELinux = selinuxEnabled()
	if _, err := os.Stat("/proc/self/ns/time"); err == nil {
		h.TimeNamespace = true
	}
	h.OnlineCPUs = readTrim("/sys/devices/system/cpu/online")
	h.OnlineMems = readTrim("/sys/devices/system/node/online")
	if h.Hostname, err = os.Hostname(); err != nil {
		return nil, fmt.Errorf("read hostname: %w", err)
	}
	h.ThermalThrottle = thermalThrottle("/sys/devices/system/cpu")
	for _, name := range rlimitNames {
		res, err := rlimit.Parse(name)
		if err != nil {
			continue
		}
		var lim unix.Rlimit
		if err := unix.Getrlimit(res, &lim); err == nil {
			h.RlimitHard[name] = lim.Max
		}
	}
	h.DefaultSysctls = map[string]string{}
	for k, v := range map[string]string{
		"net.ipv4.ping_group_range":           "0 2147483647",
		"net.ipv4.ip_unprivileged_port_start": "0",
	} {
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(k, ".", "/")); err == nil {
			h.DefaultSysctls[k] = v
		}
	}
	return h, nil
}

// thermalThrottle lists cpuN/thermal_throttle under dir, in CPU order.
func thermalThrottle(dir string) []string {
	found, _ := filepath.Glob(filepath.Join(dir, "cpu[0-9]*", "thermal_throttle"))
	slices.SortFunc(found, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b) // cpu2 before cpu10
		}
		return strings.Compare(a, b)
	})
	return found
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func selinuxEnabled() bool {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/selinux", &st) != nil || st.Type != unix.SELINUX_MAGIC {
		return false
	}
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}
