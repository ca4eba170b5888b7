package cgroups

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The cgroup2 side of Set and OOMEvents, run against a directory of plain
// files standing for a cgroup2 cgroup with every controller: the build
// machines' cgroup2 has hugetlb alone, so the real thing is tested there
// for hugetlb only. The fake checks what is written where; the kernel's
// reaction to it is the root tests' business.

// fakeV2 makes a directory with the given control files, empty, and a
// cgroup.controllers listing every controller.
func fakeV2(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fakeHugePages(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "hugepages-2048kB"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := hugePagesDir
	hugePagesDir = dir
	t.Cleanup(func() { hugePagesDir = old })
}

func TestSetV2Files(t *testing.T) {
	fakeHugePages(t)
	dir := fakeV2(t, "memory.max", "memory.swap.max", "memory.low", "memory.high",
		"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems",
		"pids.max", "io.weight", "io.max", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max")
	m := Load(map[string]string{"": dir})
	warnings, err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](100 * mib), Swap: ptr[int64](300 * mib), Reservation: ptr[int64](50 * mib),
			Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), KernelTCP: ptr[int64](1),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
			Burst: ptr[uint64](1000), Idle: ptr[int64](0), Cpus: "0-1", Mems: "0",
			RealtimeRuntime: ptr[int64](1000),
		},
		Pids: &specs.LinuxPids{Limit: ptr[int64](0)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                ptr[uint16](500),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3)}},
		Unified:        map[string]string{"memory.high": "123"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max":           "104857600",
		"memory.swap.max":      "209715200", // memory+swap 300 MiB less memory 100 MiB
		"memory.low":           "52428800",
		"memory.high":          "123",
		"cpu.weight":           "100",
		"cpu.max":              "50000 100000",
		"cpu.max.burst":        "1000",
		"cpu.idle":             "0",
		"cpuset.cpus":          "0-1",
		"cpuset.mems":          "0",
		"pids.max":             "max",
		"io.weight":            "4950",
		"io.max":               "8:0 rbps=max",
		"hugetlb.2MB.max":      "4194304",
		"hugetlb.2MB.rsvd.max": "4194304",
		"rdma.max":             "mlx5_0 hca_handle=3",
	} {
		if got, _ := readFile(filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	for _, w := range []string{"memory.swappiness", "memory.disableOOMKiller", "memory.kernelTCP", "cpu.realtimeRuntime"} {
		if !slices.ContainsFunc(warnings, func(s string) bool { return strings.HasPrefix(s, w) }) {
			t.Errorf("no warning about %s in %q", w, warnings)
		}
	}
	if len(warnings) != 4 {
		t.Errorf("warnings %q, want 4", warnings)
	}
}

// A period without a quota keeps the quota cpu.max already has; BFQ takes
// the v1 weight as it is.
func TestSetV2PeriodAloneAndBFQ(t *testing.T) {
	dir := fakeV2(t, "cpu.max", "io.bfq.weight")
	if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte("25000 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Load(map[string]string{"": dir})
	if _, err := m.Set(&specs.LinuxResources{
		CPU:     &specs.LinuxCPU{Period: ptr[uint64](50000)},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](300)},
	}); err != nil {
		t.Fatal(err)
	}
	// The fake file is not truncated: the new value overwrites the start.
	if got, _ := readFile(filepath.Join(dir, "cpu.max")); !strings.HasPrefix(got, "25000 50000") {
		t.Errorf("cpu.max = %q, want the quota kept: 25000 50000", got)
	}
	if got, _ := readFile(filepath.Join(dir, "io.bfq.weight")); got != "300" {
		t.Errorf("io.bfq.weight = %q, want 300", got)
	}
}

func TestSetV2MissingController(t *testing.T) {
	dir := fakeV2(t)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Load(map[string]string{"": dir})
	_, err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}})
	if err == nil || !strings.Contains(err.Error(), "no pids controller") {
		t.Errorf("got %v, want a missing pids controller", err)
	}
	_, err = m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}})
	if err == nil || !strings.Contains(err.Error(), `controller "memory" is not enabled`) {
		t.Errorf("got %v, want memory not enabled", err)
	}
}

// The cgroup2 OOM watcher against plain files: inotify reports their
// writes as cgroupfs reports its own changes.
func TestOOMWatchV2(t *testing.T) {
	dir := fakeV2(t)
	// Rewrite in place, in one write and without truncating, so that the
	// watcher never reads a half-written file (cgroupfs files change
	// atomically).
	write := func(file, s string) {
		t.Helper()
		if err := writeFile(filepath.Join(dir, file), s); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"memory.events", "cgroup.events"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
	write("cgroup.events", "populated 1\nfrozen 0\n")
	events, stop, err := watchOOMV2(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	receive := func(what string, open bool) {
		t.Helper()
		select {
		case _, ok := <-events:
			if ok != open {
				t.Fatalf("%s: got open=%v", what, ok)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing after 5s", what)
		}
	}
	// The kill counted before the watch is not reported; two more are,
	// one event each. The last process going closes the channel.
	write("memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n")
	receive("first kill", true)
	receive("second kill", true)
	write("cgroup.events", "populated 0\nfrozen 0\n")
	receive("empty cgroup", false)
}
