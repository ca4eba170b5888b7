package specconv

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func p64(v int64) *int64 { return &v }

func TestResources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		edit   func(o *Options)
		host   func(h *Host)
		check  func(t *testing.T, r *specs.LinuxResources)
		warn   string
		errMsg []string
	}{
		{name: "none", check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
				t.Errorf("resources %+v, want only device rules", r)
			}
		}},
		{name: "memory with docker's default swap", edit: func(o *Options) { o.Memory = 256 << 20 }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 256<<20 || *r.Memory.Swap != 512<<20 || r.Memory.Reservation != nil {
				t.Errorf("memory %+v, want limit 256M swap 512M", r.Memory)
			}
		}},
		{name: "memory swap unlimited, reservation, swappiness, oom", edit: func(o *Options) {
			o.Memory, o.MemorySwap, o.MemoryReservation, o.MemorySwappiness = 64<<20, -1, 32<<20, p64(10)
			f := true
			o.OomKillDisable = &f
		}, check: func(t *testing.T, r *specs.LinuxResources) {
			m := r.Memory
			if *m.Limit != 64<<20 || *m.Swap != -1 || *m.Reservation != 32<<20 || *m.Swappiness != 10 || !*m.DisableOOMKiller {
				t.Errorf("memory %+v", m)
			}
		}},
		{name: "swappiness -1 is unset", edit: func(o *Options) { o.MemorySwappiness = p64(-1) }, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Memory != nil {
				t.Errorf("memory %+v", r.Memory)
			}
		}},
		{name: "no swap accounting", host: func(h *Host) { h.SwapLimit = false },
			edit: func(o *Options) { o.Memory, o.MemorySwap = 64<<20, 128<<20 }, warn: "cannot limit swap",
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Memory.Swap != nil || *r.Memory.Limit != 64<<20 {
					t.Errorf("memory %+v, want the limit without swap", r.Memory)
				}
			}},
		{name: "nano cpus", edit: func(o *Options) { o.NanoCPUs = 1.5e9 }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Period != 100000 || *r.CPU.Quota != 150000 {
				t.Errorf("cpu %+v, want period 100000 quota 150000", r.CPU)
			}
		}},
		{name: "smallest nano cpus", edit: func(o *Options) { o.NanoCPUs = 1e7 }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Quota != 1000 {
				t.Errorf("quota %d, want 1000", *r.CPU.Quota)
			}
		}},
		{name: "cpu shares quota period cpuset", edit: func(o *Options) {
			o.CPUShares, o.CPUQuota, o.CPUPeriod, o.CpusetCpus, o.CpusetMems = 512, 50000, 200000, "0-1,3", "0"
		}, check: func(t *testing.T, r *specs.LinuxResources) {
			c := r.CPU
			if *c.Shares != 512 || *c.Quota != 50000 || *c.Period != 200000 || c.Cpus != "0-1,3" || c.Mems != "0" {
				t.Errorf("cpu %+v", c)
			}
		}},
		{name: "shares clamped", edit: func(o *Options) { o.CPUShares = 1 }, warn: "raised to 2", check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.CPU.Shares != 2 {
				t.Errorf("shares %d", *r.CPU.Shares)
			}
		}},
		{name: "pids", edit: func(o *Options) { o.PidsLimit = p64(100) }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != 100 {
				t.Errorf("pids %d", *r.Pids.Limit)
			}
		}},
		{name: "pids 0 is unlimited", edit: func(o *Options) { o.PidsLimit = p64(0) }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Pids.Limit != -1 {
				t.Errorf("pids %d, want -1", *r.Pids.Limit)
			}
		}},
		{name: "blkio weight", edit: func(o *Options) { o.BlkioWeight = 300 }, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.BlockIO.Weight != 300 {
				t.Errorf("weight %d", *r.BlockIO.Weight)
			}
		}},
		{name: "memory too small", edit: func(o *Options) { o.Memory = 1 << 20 }, errMsg: []string{"minimum memory limit allowed is 6MB"}},
		{name: "swap below memory", edit: func(o *Options) { o.Memory, o.MemorySwap = 64<<20, 32<<20 }, errMsg: []string{"larger than memory limit"}},
		{name: "swap without memory", edit: func(o *Options) { o.MemorySwap = 64 << 20 }, errMsg: []string{"--memory-swap needs --memory"}},
		{name: "reservation above limit", edit: func(o *Options) { o.Memory, o.MemoryReservation = 64<<20, 65<<20 }, errMsg: []string{"reservation"}},
		{name: "swappiness", edit: func(o *Options) { o.MemorySwappiness = p64(101) }, errMsg: []string{"0-100"}},
		{name: "nano and period", edit: func(o *Options) { o.NanoCPUs, o.CPUPeriod = 1e9, 100000 }, errMsg: []string{"Nano CPUs and CPU Period"}},
		{name: "nano and quota", edit: func(o *Options) { o.NanoCPUs, o.CPUQuota = 1e9, 100000 }, errMsg: []string{"Nano CPUs and CPU Quota"}},
		{name: "more cpus than the host", edit: func(o *Options) { o.NanoCPUs = 5e9 }, errMsg: []string{"--cpus 5", "from 0.01 to 4.00"}},
		{name: "too few cpus", edit: func(o *Options) { o.NanoCPUs = 1e6 }, errMsg: []string{"--cpus 0.001"}},
		{name: "period", edit: func(o *Options) { o.CPUPeriod = 999 }, errMsg: []string{"--cpu-period 999"}},
		{name: "quota", edit: func(o *Options) { o.CPUQuota = 10 }, errMsg: []string{"--cpu-quota 10"}},
		{name: "cpuset not on host", edit: func(o *Options) { o.CpusetCpus = "2-5" }, errMsg: []string{"requested CPUs are not available", "2-5", "0-3"}},
		{name: "cpuset syntax", edit: func(o *Options) { o.CpusetCpus = "0,,1" }, errMsg: []string{"--cpuset-cpus"}},
		{name: "cpuset huge range", edit: func(o *Options) { o.CpusetCpus = "0-4294967295" }, errMsg: []string{"invalid range"}},
		{name: "mems", edit: func(o *Options) { o.CpusetMems = "1" }, errMsg: []string{"memory nodes are not available"}},
		{name: "blkio range", edit: func(o *Options) { o.BlkioWeight = 5 }, errMsg: []string{"from 10 to 1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost()
			if tc.host != nil {
				tc.host(h)
			}
			s, warnings, err := trySpec(t, h, tc.edit)
			if tc.errMsg != nil {
				wantErr(t, err, tc.errMsg...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s.Linux.Resources)
			if (tc.warn == "") != (len(warnings) == 0) || (tc.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warn)) {
				t.Errorf("warnings %q, want one mentioning %q", warnings, tc.warn)
			}
			if len(s.Linux.Resources.Devices) == 0 || s.Linux.Resources.Devices[0].Allow {
				t.Errorf("device rules %+v, want deny-all first", s.Linux.Resources.Devices)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	def := defaultDeviceRules()
	s := mustSpec(t, nil, nil)
	if !slices.EqualFunc(s.Linux.Resources.Devices, def, deviceRuleEqual) || len(s.Linux.Devices) != 0 {
		t.Errorf("default device rules %+v devices %+v", s.Linux.Resources.Devices, s.Linux.Devices)
	}
	// docker's list: deny all; allow c 1:5 1:3 1:9 1:8 5:0 5:1; deny fuse.
	want := []string{"deny a", "allow c 1:5", "allow c 1:3", "allow c 1:9", "allow c 1:8", "allow c 5:0", "allow c 5:1", "deny c 10:229"}
	var got []string
	for _, r := range def {
		got = append(got, ruleString(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("default rules %q, want %q", got, want)
	}

	s = mustSpec(t, nil, func(o *Options) {
		o.Devices = []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}, {PathOnHost: "/dev/zero"}}
		o.DeviceCgroupRules = []string{"c 42:* rmw", "a *:* m", "b 8:0 r"}
	})
	if d := s.Linux.Devices; len(d) != 2 || d[0].Path != "/dev/mynull" || d[0].Type != "c" || d[0].Major != 1 || d[0].Minor != 3 ||
		*d[0].FileMode != 0o666 || d[1].Path != "/dev/zero" || d[1].Minor != 5 {
		t.Errorf("devices %+v", d)
	}
	got = nil
	for _, r := range s.Linux.Resources.Devices[len(def):] {
		got = append(got, ruleString(r)+" "+r.Access)
	}
	want = []string{"allow c 1:3 rw", "allow c 1:5 rwm", "allow c 42:-1 rmw", "allow a -1:-1 m", "allow b 8:0 r"}
	if !slices.Equal(got, want) {
		t.Errorf("added rules %q, want %q", got, want)
	}

	for _, tc := range []struct {
		edit func(o *Options)
		err  string
	}{
		{func(o *Options) { o.Devices = []Device{{PathOnHost: "/etc/passwd"}} }, "not a device node"},
		{func(o *Options) { o.Devices = []Device{{PathOnHost: "/dev/berth-no-such"}} }, "/dev/berth-no-such"},
		{func(o *Options) { o.Devices = []Device{{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}} }, "invalid permissions"},
		{func(o *Options) { o.Devices = []Device{{PathOnHost: "/dev/null", CgroupPermissions: "rr"}} }, "invalid permissions"},
		{func(o *Options) { o.Devices = []Device{{PathOnHost: "dev/null"}} }, "must be absolute"},
		{func(o *Options) { o.DeviceCgroupRules = []string{"c 1:3"} }, "invalid device cgroup rule format: 'c 1:3'"},
		{func(o *Options) { o.DeviceCgroupRules = []string{"x 1:3 r"} }, "invalid device cgroup rule"},
		{func(o *Options) { o.DeviceCgroupRules = []string{"c -1:3 r"} }, "invalid device cgroup rule"},
		{func(o *Options) { o.DeviceCgroupRules = []string{"c 1:99999999999 r"} }, "invalid device cgroup rule"},
	} {
		_, _, err := trySpec(t, nil, tc.edit)
		wantErr(t, err, tc.err)
	}
}

func ruleString(r specs.LinuxDeviceCgroup) string {
	s := "deny"
	if r.Allow {
		s = "allow"
	}
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	s += " " + typ
	if r.Major != nil {
		s += " " + strconv.FormatInt(*r.Major, 10) + ":" + strconv.FormatInt(*r.Minor, 10)
	}
	return s
}

func deviceRuleEqual(a, b specs.LinuxDeviceCgroup) bool {
	return ruleString(a) == ruleString(b) && a.Access == b.Access
}
