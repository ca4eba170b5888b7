package cgroups

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// A process allocating past a 32 MiB limit is killed by the OOM killer,
// and the kill comes through OOMEvents.
func TestOOMKill(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := m.(*manager).dirFor("memory", "memory"); !ok {
		t.Skip("no memory controller")
	}
	mem := &specs.LinuxMemory{Limit: ptr[int64](32 * mib)}
	swaps, _ := os.ReadFile("/proc/swaps")
	withSwap := strings.Count(string(swaps), "\n") > 1
	if withSwap {
		mem.Swap = ptr[int64](32 * mib) // no escape into swap
	}
	if _, err := m.Set(&specs.LinuxResources{Memory: mem}); err != nil {
		t.Fatal(err)
	}
	events, stop, err := m.OOMEvents()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	p, goAhead, out := startHelper(t, "hog")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	goAhead()
	p.waitSignaled(t, syscall.SIGKILL)
	if strings.Contains(out.String(), "survived") {
		t.Fatal("the hog survived")
	}
	select {
	case _, ok := <-events:
		if !ok {
			t.Fatal("events closed without an OOM")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OOM event 5s after the kill")
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// v1 counts failures of the memory limit only (not of memsw, which
	// is hit first when both limits are equal).
	if !withSwap && st.Memory.Usage.Failcnt == 0 {
		t.Errorf("memory failcnt 0 after an OOM kill: %+v", st.Memory.Usage)
	}
	if st.Memory.Usage.Limit != 32*mib {
		t.Errorf("memory limit in stats %d, want %d", st.Memory.Usage.Limit, 32*mib)
	}

	stop()
	select {
	case _, ok := <-events:
		if ok {
			t.Error("an event after stop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events not closed by stop")
	}
	stop() // twice is fine
}

// The watch ends by itself when the cgroup goes away.
func TestOOMEventsEndOnDestroy(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := m.(*manager).dirFor("memory", "memory"); !ok {
		t.Skip("no memory controller")
	}
	events, stop, err := m.OOMEvents()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Error("an OOM event from an empty cgroup")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events still open 5s after the cgroup was removed")
	}
}

// A fork bomb stops at pids.max: fork fails with EAGAIN.
func TestPidsLimitStopsForkBomb(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl to report fork's errno")
	}
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}); err != nil {
		t.Fatal(err)
	}
	// The children close their output so that the test need not wait
	// for them; they are killed with the cgroup.
	out := runIn(t, m, `exec perl -e '
		for my $i (1..100) {
			my $p = fork;
			if (!defined $p) { printf "fork %d failed: errno %d\n", $i, $!+0; exit 0 }
			if ($p == 0) { close STDOUT; close STDERR; sleep 60; exit 0 }
		}
		print "100 forks\n"'`)
	// perl itself is one of the ten.
	if out != "fork 10 failed: errno 11" {
		t.Fatalf("got %q, want the 10th fork to fail with EAGAIN (11)", out)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Limit != 10 || st.Pids.Current > 10 || st.Pids.Current < 9 {
		t.Errorf("pids stats %+v, want 9 children left of a limit of 10", st.Pids)
	}
}

// Stats of a busy process are real numbers.
func TestStatsBusy(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](256 * mib)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
	}); err != nil {
		t.Fatal(err)
	}
	p, goAhead, out := startHelper(t, "busy")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	goAhead()
	waitOutput(t, out, "ready")
	time.Sleep(300 * time.Millisecond)
	dev, node, hasDev := loopDevice(t)
	if hasDev {
		// v1 counts a device's I/O only under BFQ or with a throttle
		// rule; a generous one counts without slowing anything.
		if _, err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 1 << 40}},
		}}); err != nil {
			t.Fatal(err)
		}
		// Direct reads from the disk, for the block I/O counters.
		if o := runIn(t, m, "dd if="+node+" of=/dev/null bs=64k count=16 iflag=direct 2>&1"); !strings.Contains(o, "copied") {
			t.Fatalf("dd: %s", o)
		}
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	t.Logf("stats: %s", b)
	if st.CPU.Usage.Total < 100e6 || st.CPU.Usage.User == 0 {
		t.Errorf("cpu usage %+v: want at least 100ms, with user time", st.CPU.Usage)
	}
	if m.Paths()["cpuacct"] != "" && len(st.CPU.Usage.Percpu) == 0 {
		t.Error("no per-CPU usage from cpuacct")
	}
	if st.Memory.Usage.Usage < 16*mib || st.Memory.Usage.Limit != 256*mib || len(st.Memory.Raw) == 0 {
		t.Errorf("memory %+v (raw has %d keys): want 16 MiB used of 256", st.Memory.Usage, len(st.Memory.Raw))
	}
	if st.Pids.Current < 1 || st.Pids.Limit != 100 {
		t.Errorf("pids %+v", st.Pids)
	}
	if len(st.CPUSet.CPUs) == 0 || len(st.CPUSet.Mems) == 0 {
		t.Errorf("cpuset %+v", st.CPUSet)
	}
	if d := m.Paths()[""]; d != "" && exists(d, "cpu.pressure") && st.CPU.PSI == nil {
		t.Error("no cpu pressure although cgroup2 has cpu.pressure")
	}
	if _, _, ok := m.(*manager).dirFor("hugetlb", "hugetlb"); ok {
		if _, ok := st.Hugetlb["2MB"]; !ok {
			t.Errorf("no 2MB hugetlb stats: %v", st.Hugetlb)
		}
	}
	if hasDev {
		var read uint64
		for _, e := range st.Blkio.IoServiceBytesRecursive {
			if int64(e.Major) == dev.Major && int64(e.Minor) == dev.Minor && e.Op == "Read" {
				read += e.Value
			}
		}
		if read < 1*mib {
			t.Errorf("block I/O read %d bytes from %d:%d, want the 1 MiB dd read: %+v", read, dev.Major, dev.Minor, st.Blkio)
		}
	}
}

// loopDevice attaches a 4 MiB file to a loop device, for block I/O the
// test can do: the host's own disks may be closed to it.
func loopDevice(t *testing.T) (specs.LinuxBlockIODevice, string, bool) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 4*mib), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Logf("no loop device (%v: %s): block I/O counters not checked", err, out)
		return specs.LinuxBlockIODevice{}, "", false
	}
	node := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "--detach", node).Run() })
	var st syscall.Stat_t
	if err := syscall.Stat(node, &st); err != nil {
		t.Fatal(err)
	}
	return specs.LinuxBlockIODevice{Major: int64(st.Rdev >> 8 & 0xfff), Minor: int64(st.Rdev&0xff | st.Rdev>>12&0xfff00)}, node, true
}
