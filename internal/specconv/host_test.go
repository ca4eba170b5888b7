package specconv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-project/berth/internal/runtime"
	"github.com/berth-project/berth/internal/runtime/specgen"
	"golang.org/x/sys/unix"
)

// TestDetectHost checks DetectHost against what this process can see for
// itself.
func TestDetectHost(t *testing.T) {
	t.Parallel()
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Capabilities) == 0 || h.NumCPU < 1 || h.Hostname == "" || h.CgroupParent != "/berth" {
		t.Errorf("host %+v", h)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if h.RlimitHard["RLIMIT_NOFILE"] != lim.Max {
		t.Errorf("RLIMIT_NOFILE ceiling %d, want %d", h.RlimitHard["RLIMIT_NOFILE"], lim.Max)
	}
	want, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
	if len(want) != len(h.ThermalThrottle) {
		t.Errorf("thermal_throttle %v, want %v", h.ThermalThrottle, want)
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil && h.DefaultSysctls["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("default sysctls %v lack ip_unprivileged_port_start", h.DefaultSysctls)
	}
}

func TestThermalThrottleOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []string{"cpu10", "cpu2", "cpu1", "cpufreq"} {
		if err := os.MkdirAll(filepath.Join(dir, c, "thermal_throttle"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range thermalThrottle(dir) {
		got = append(got, filepath.Base(filepath.Dir(p)))
	}
	if !slices.Equal(got, []string{"cpu1", "cpu2", "cpu10"}) {
		t.Errorf("order %v", got)
	}
}

// TestRuntimeValidates: the specs Spec makes pass the runtime's own
// validation, defaults and the options that change the most.
func TestRuntimeValidates(t *testing.T) {
	t.Parallel()
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(o *Options){
		"defaults":   nil,
		"privileged": func(o *Options) { o.Privileged = true },
		"everything": func(o *Options) {
			o.User = "berth"
			o.Tty = true
			o.ReadonlyRootfs = true
			o.Tmpfs = map[string]string{"/run": "size=1m"}
			o.Mounts = []Mount{{Source: "/tmp", Destination: "/hosttmp", ReadOnly: true}}
			o.Memory, o.NanoCPUs, o.PidsLimit = 64<<20, 5e8, p64(50)
			o.Ulimits = []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}
			o.CapAdd, o.CapDrop = []string{"NET_ADMIN"}, []string{"MKNOD"}
			o.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "100000"}
			o.SecurityOpt = []string{"no-new-privileges", "mask=/proc/cpuinfo"}
			o.Devices = []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/n2"}}
			o.Init, o.InitPath = true, "/bin/true"
		},
		"shared namespaces": func(o *Options) {
			o.Network.Mode, o.UTS.Mode, o.IPC.Mode, o.PID.Mode = NamespaceHost, NamespaceHost, NamespaceHost, NamespaceHost
		},
	} {
		s, _, err := trySpec(t, h, edit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := runtime.Validate(s, "/nonexistent-bundle"); err != nil {
			t.Errorf("%s: the runtime refuses the spec: %v", name, err)
		}
	}
}

// TestSpecDefaults pins the whole default spec to docker's choices.
func TestSpecDefaults(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, nil)
	c := s.Process.Capabilities
	if !slices.Equal(c.Bounding, specgen.DefaultCapabilities) || len(c.Bounding) != 14 {
		t.Errorf("capabilities %v, want the 14 defaults", c.Bounding)
	}
	if s.Linux.Seccomp == nil || s.Process.NoNewPrivileges || s.Process.Terminal || s.Root.Readonly {
		t.Errorf("seccomp %v nnp %v terminal %v ro %v", s.Linux.Seccomp != nil, s.Process.NoNewPrivileges, s.Process.Terminal, s.Root.Readonly)
	}
	if s.Linux.CgroupsPath != "/berth/"+testID || s.Hostname != testID[:12] || s.Process.Cwd != "/" {
		t.Errorf("cgroups path %q hostname %q cwd %q", s.Linux.CgroupsPath, s.Hostname, s.Process.Cwd)
	}
	if len(s.Linux.MaskedPaths) != len(specgen.MaskedPaths)+1 || s.Linux.MaskedPaths[len(s.Linux.MaskedPaths)-1] != "/sys/devices/system/cpu/cpu0/thermal_throttle" {
		t.Errorf("masked paths %q, want SECURITY.md's and the host's thermal_throttle", s.Linux.MaskedPaths)
	}
	if s.Process.User.UID != 0 || !slices.Equal(s.Process.User.AdditionalGids, []uint32{0}) {
		t.Errorf("user %+v", s.Process.User)
	}
	if s.Annotations != nil || s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("annotations %v sysctls %v", s.Annotations, s.Linux.Sysctl)
	}
	a := mustSpec(t, nil, func(o *Options) { o.Annotations = map[string]string{"k": "v"} })
	if a.Annotations["k"] != "v" {
		t.Errorf("annotations %v", a.Annotations)
	}
}
