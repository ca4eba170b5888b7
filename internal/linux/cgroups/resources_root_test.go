package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

const mib = 1 << 20

// blockDevice returns the numbers and name of a disk of the host, for the
// blkio throttles and counters, skipping loop, ram and zram devices.
func blockDevice(t *testing.T) (specs.LinuxBlockIODevice, string, bool) {
	ents, _ := os.ReadDir("/sys/block")
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		s, err := readFile(filepath.Join("/sys/block", n, "dev"))
		if err != nil {
			continue
		}
		var d specs.LinuxBlockIODevice
		if _, err := fmt.Sscanf(s, "%d:%d", &d.Major, &d.Minor); err == nil {
			return d, n, true
		}
	}
	return specs.LinuxBlockIODevice{}, "", false
}

// want is one expected control file value after a Set: the file and
// value on whichever side holds the controller ("" file: not checked
// there).
type want struct {
	v1, v2   string // controller on each side ("blkio", "io")
	v1File   string
	v2File   string
	v1Value  string
	v2Value  string
	contains bool // the file holds the value among other lines
}

func checkFiles(t *testing.T, m Manager, step string, wants []want) {
	t.Helper()
	mm := m.(*manager)
	for _, w := range wants {
		dir, unified, ok := mm.dirFor(w.v1, w.v2)
		if !ok {
			t.Logf("%s: no %s controller here: not checked", step, w.v1)
			continue
		}
		file, value := w.v1File, w.v1Value
		if unified {
			file, value = w.v2File, w.v2Value
		}
		if file == "" {
			continue
		}
		got, err := readFile(filepath.Join(dir, file))
		if err != nil {
			t.Errorf("%s: %v", step, err)
			continue
		}
		if w.contains {
			if !strings.Contains(got, value) {
				t.Errorf("%s: %s = %q, want it to contain %q", step, filepath.Join(dir, file), got, value)
			}
		} else if got != value {
			t.Errorf("%s: %s = %q, want %q", step, filepath.Join(dir, file), got, value)
		}
	}
}

func TestSetAndUpdate(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	p := start(t, "sleep", "100")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	mm := m.(*manager)
	memDir, memV2, _ := mm.dirFor("memory", "memory")
	hasSwap := memDir != "" && (exists(memDir, "memory.memsw.limit_in_bytes") || memV2)
	dev, _, hasDev := blockDevice(t)
	devKey := devKey(dev)
	hugeOK := false
	if sizes, _ := HugePageSizes(); slices.Contains(sizes, "2MB") {
		_, _, hugeOK = mm.dirFor("hugetlb", "hugetlb")
	}
	cpus := "0"
	if runtime.NumCPU() > 1 {
		cpus = "0-1"
	}

	res := func(limit, swap, reservation int64, shares uint64, quota int64, period uint64, idle int64,
		pids int64, weight uint16, rbps uint64, huge uint64, cpuset string) *specs.LinuxResources {
		r := &specs.LinuxResources{
			Memory: &specs.LinuxMemory{
				Limit: &limit, Reservation: &reservation,
				Swappiness: ptr[uint64](30), DisableOOMKiller: ptr(false), UseHierarchy: ptr(true),
				Kernel: ptr[int64](64 * mib),
			},
			CPU: &specs.LinuxCPU{
				Shares: &shares, Quota: &quota, Period: &period, Burst: ptr[uint64](10000),
				RealtimePeriod: ptr[uint64](500000), Cpus: cpuset, Mems: "0", Idle: &idle,
			},
			Pids:    &specs.LinuxPids{Limit: &pids},
			BlockIO: &specs.LinuxBlockIO{Weight: &weight},
		}
		if hasSwap {
			r.Memory.Swap = &swap
		}
		if hasDev {
			r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: rbps}}
			r.BlockIO.ThrottleWriteIOPSDevice = []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 200}}
		}
		if hugeOK {
			r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: huge}}
		}
		return r
	}
	expect := func(limit, swap, reservation, shares, weight, quota, period, idle, pids, rbps, huge, cpuset string) []want {
		w := []want{
			{v1: "memory", v2: "memory", v1File: "memory.limit_in_bytes", v2File: "memory.max", v1Value: limit, v2Value: limit},
			{v1: "memory", v2: "memory", v1File: "memory.soft_limit_in_bytes", v2File: "memory.low", v1Value: reservation, v2Value: reservation},
			{v1: "memory", v2: "memory", v1File: "memory.swappiness", v1Value: "30"},
			{v1: "memory", v2: "memory", v1File: "memory.use_hierarchy", v1Value: "1"},
			{v1: "memory", v2: "memory", v1File: "memory.oom_control", v1Value: "oom_kill_disable 0", contains: true},
			{v1: "cpu", v2: "cpu", v1File: "cpu.shares", v1Value: shares},
			{v1: "cpu", v2: "cpu", v1File: "cpu.cfs_quota_us", v1Value: quota, v2File: "cpu.max", v2Value: strings.Replace(quota, "-1", "max", 1) + " " + period},
			{v1: "cpu", v2: "cpu", v1File: "cpu.cfs_period_us", v1Value: period},
			{v1: "cpu", v2: "cpu", v1File: "cpu.cfs_burst_us", v1Value: "10000", v2File: "cpu.max.burst", v2Value: "10000"},
			{v1: "cpu", v2: "cpu", v1File: "cpu.rt_period_us", v1Value: "500000"},
			{v1: "cpu", v2: "cpu", v1File: "cpu.idle", v1Value: idle, v2File: "cpu.idle", v2Value: idle},
			{v1: "cpuset", v2: "cpuset", v1File: "cpuset.cpus", v1Value: cpuset, v2File: "cpuset.cpus", v2Value: cpuset},
			{v1: "cpuset", v2: "cpuset", v1File: "cpuset.mems", v1Value: "0", v2File: "cpuset.mems", v2Value: "0"},
			{v1: "pids", v2: "pids", v1File: "pids.max", v1Value: pids, v2File: "pids.max", v2Value: pids},
			{v1: "blkio", v2: "io", v1File: "blkio.bfq.weight", v1Value: weight},
		}
		if hasSwap {
			w = append(w, want{v1: "memory", v2: "memory", v1File: "memory.memsw.limit_in_bytes", v1Value: swap})
		}
		if hasDev {
			w = append(w,
				want{v1: "blkio", v2: "io", v1File: "blkio.throttle.read_bps_device", v1Value: rbps, contains: rbps != ""},
				want{v1: "blkio", v2: "io", v1File: "blkio.throttle.write_iops_device", v1Value: devKey + " 200"})
		}
		if hugeOK {
			w = append(w,
				want{v1: "hugetlb", v2: "hugetlb", v1File: "hugetlb.2MB.limit_in_bytes", v1Value: huge, v2File: "hugetlb.2MB.max", v2Value: huge},
				want{v1: "hugetlb", v2: "hugetlb", v2File: "hugetlb.2MB.rsvd.max", v2Value: huge})
		}
		return w
	}
	set := func(step string, r *specs.LinuxResources) []string {
		t.Helper()
		warnings, err := m.Set(r)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return warnings
	}

	// Create.
	warnings := set("create", res(64*mib, 128*mib, 32*mib, 512, 50000, 100000, 0, 32, 200, 1*mib, 4*mib, "0"))
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "memory.kernel") }) {
		t.Errorf("no warning for memory.kernel: %q", warnings)
	}
	checkFiles(t, m, "create", expect("67108864", "134217728", "33554432", "512", "200", "50000", "100000", "0", "32",
		devKey+" 1048576", "4194304", "0"))

	// Update down: the memory limit now goes below the old one before
	// memsw does; shares before entering SCHED_IDLE; a throttle removed.
	// An idle (SCHED_IDLE) group reads back the idle weight, 3 shares,
	// whatever was written before.
	set("update down", res(16*mib, 32*mib, 8*mib, 2048, -1, 200000, 1, 64, 500, 0, 8*mib, cpus))
	checkFiles(t, m, "update down", expect("16777216", "33554432", "8388608", "3", "500", "-1", "200000", "1", "64",
		"", "8388608", cpus))
	if hasDev {
		if got, _ := readFile(filepath.Join(m.Paths()["blkio"], "blkio.throttle.read_bps_device")); strings.Contains(got, devKey) {
			t.Errorf("read bps limit still set after a rate of 0: %q", got)
		}
	}

	// Update up: memsw must be raised before memory; leaving SCHED_IDLE
	// before the shares.
	set("update up", res(256*mib, 512*mib, 64*mib, 1024, 20000, 100000, 0, -1, 100, 2*mib, 2*mib, "0"))
	checkFiles(t, m, "update up", expect("268435456", "536870912", "67108864", "1024", "100", "20000", "100000", "0", "max",
		devKey+" 2097152", "2097152", "0"))

	// A nil field leaves its file alone.
	set("nil fields", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](7)}})
	checkFiles(t, m, "nil fields", expect("268435456", "536870912", "67108864", "1024", "100", "20000", "100000", "0", "7",
		devKey+" 2097152", "2097152", "0"))

	// Unified values go last and win over the typed fields.
	if d := m.Paths()[""]; d != "" && hugeOK && exists(d, "hugetlb.2MB.max") {
		set("unified", &specs.LinuxResources{
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 * mib}},
			Unified:        map[string]string{"hugetlb.2MB.max": "6291456"},
		})
		if got, _ := readFile(filepath.Join(d, "hugetlb.2MB.max")); got != "6291456" {
			t.Errorf("unified: hugetlb.2MB.max = %q, want 6291456", got)
		}
		if got, _ := readFile(filepath.Join(d, "hugetlb.2MB.rsvd.max")); got != "8388608" {
			t.Errorf("unified: hugetlb.2MB.rsvd.max = %q, want 8388608 from hugepageLimits", got)
		}
	}
}

func TestSetErrors(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	type tc struct {
		name    string
		r       *specs.LinuxResources
		want    string
		unsupp  bool
		skipMsg string
	}
	cases := []tc{
		{name: "hugepage size", r: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}, want: "3MB"},
		{name: "unified path", r: &specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, want: "file name"},
		{name: "unified procs", r: &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, want: "not a resource"},
		{name: "swap below memory", r: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mib), Swap: ptr[int64](32 * mib)}}, want: "below the memory limit"},
		{name: "bad device type", r: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, want: "invalid type"},
	}
	if paths["cpu"] != "" {
		cases = append(cases, tc{name: "shares clamped", r: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1 << 20)}}, want: "out of range"})
	}
	if paths["net_cls"] == "" {
		cases = append(cases, tc{name: "net_cls", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}}, want: "net_cls", unsupp: true})
	}
	if paths["net_prio"] == "" {
		cases = append(cases, tc{name: "net_prio", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 1}}}}, want: "net_prio", unsupp: true})
	}
	if _, _, ok := m.(*manager).dirFor("rdma", "rdma"); !ok {
		cases = append(cases, tc{name: "rdma", r: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx4_0": {HcaHandles: ptr[uint32](2)}}}, want: "rdma", unsupp: true})
	}
	if paths["memory"] != "" && paths[""] != "" {
		// Hybrid: memory is on v1, so cgroup2 has no memory.max.
		cases = append(cases, tc{name: "unified on v1 controller", r: &specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}, want: "cgroup v1 hierarchy", unsupp: true})
	}
	if paths[""] == "" {
		cases = append(cases, tc{name: "unified without v2", r: &specs.LinuxResources{Unified: map[string]string{"memory.max": "1"}}, want: "need cgroup v2", unsupp: true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Set(c.r)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
			if c.unsupp && !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("%v does not wrap errors.ErrUnsupported", err)
			}
		})
	}
}

// memory.checkBeforeUpdate refuses a limit the cgroup already exceeds.
func TestCheckBeforeUpdate(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if _, _, ok := m.(*manager).dirFor("memory", "memory"); !ok {
		t.Skip("no memory controller")
	}
	p, goAhead, out := startHelper(t, "busy")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	goAhead()
	waitOutput(t, out, "ready")
	_, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](4 * mib), CheckBeforeUpdate: ptr(true)}})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("limit under usage: got %v, want a refusal", err)
	}
	if _, err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](512 * mib), CheckBeforeUpdate: ptr(true)}}); err != nil {
		t.Fatalf("limit above usage: %v", err)
	}
}

func waitOutput(t *testing.T, out interface{ String() string }, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from the helper after 10s: %q", s, out.String())
		}
	}
}

// The realtime budget on v1: a period below the old runtime must wait for
// the runtime to come down first.
func TestRealtimeV1(t *testing.T) {
	requireRoot(t)
	m, top := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()["cpu"]
	if dir == "" || !exists(dir, "cpu.rt_runtime_us") {
		t.Skip("no v1 cpu controller with realtime group scheduling")
	}
	// A child's budget comes out of its parent's, and a new cgroup has
	// none: give the test's top cgroup a tenth of the CPU.
	if err := writeFile(filepath.Join(filepath.Dir(dir), "cpu.rt_runtime_us"), "100000"); err != nil {
		t.Fatalf("give %s a realtime budget: %v", top, err)
	}
	for _, step := range []struct{ runtime, period int64 }{{40000, 500000}, {1000, 20000}, {50000, 1000000}} {
		if _, err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{
			RealtimeRuntime: ptr(step.runtime), RealtimePeriod: ptr(uint64(step.period)),
		}}); err != nil {
			t.Fatalf("runtime %d period %d: %v", step.runtime, step.period, err)
		}
		rt, _ := readFile(filepath.Join(dir, "cpu.rt_runtime_us"))
		per, _ := readFile(filepath.Join(dir, "cpu.rt_period_us"))
		if rt != fmt.Sprint(step.runtime) || per != fmt.Sprint(step.period) {
			t.Errorf("runtime %s period %s, want %d %d", rt, per, step.runtime, step.period)
		}
	}
}
