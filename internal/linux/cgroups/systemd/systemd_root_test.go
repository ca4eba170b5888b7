package systemd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// Root tests against the host's systemd. They need root, systemd as PID 1
// and cgroup v2 only; elsewhere they skip and say why. The build machines
// lack systemd: run them in the guest of cmd/berth-vm
// (go run ./cmd/berth-vm test --pkgs ./internal/linux/cgroups/systemd).

func needSystemd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := errNotBooted(); err != nil {
		t.Skipf("needs systemd as PID 1: %v", err)
	}
	l, err := cgroups.Detect()
	if err != nil {
		t.Skip(err)
	}
	if l.Mode != cgroups.Unified {
		t.Skipf("the assertions are written for cgroup v2 only; this host is %s", l.Mode)
	}
}

var unitSeq atomic.Int32

// testPath returns a fresh cgroupsPath and its unit name.
func testPath() (string, string) {
	id := fmt.Sprintf("%d-%d", os.Getpid(), unitSeq.Add(1))
	return "system.slice:berth-test:" + id, "berth-test-" + id + ".scope"
}

// systemctlShow returns properties of a unit as systemctl prints them.
func systemctlShow(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("no systemctl")
	}
	out, err := exec.Command("systemctl", "show", "-p", strings.Join(props, ","), unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl show %s: %v\n%s", unit, err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		if old, ok := m[k]; ok {
			// Lists (DeviceAllow) come one entry per line.
			v = old + "; " + v
		}
		m[k] = v
	}
	return m
}

// startShell runs sh -c script in the background, its stdin a pipe it
// can wait on, its output collected line by line.
type shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startShell(t *testing.T, script string) *shell {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &shell{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
}

// say sends a line and returns the shell's next line of output.
func (s *shell) say(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read from shell: %v", err)
	}
	return strings.TrimSpace(got)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func activeState(t *testing.T, unit string) string {
	t.Helper()
	b, err := dialBus()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := b.ActiveState(context.Background(), unit)
	if err != nil {
		t.Fatalf("ActiveState of %s: %v", unit, err)
	}
	return st
}

func TestRootLifecycle(t *testing.T) {
	needSystemd(t)
	path, unit := testPath()
	// The "init": waits for a line, then reports whether it may read
	// /dev/full, until told to stop.
	probe := `while read cmd; do [ "$cmd" = quit ] && exit 0; if head -c1 /dev/full >/dev/null 2>&1; then echo open; else echo denied; fi; done`
	init := startShell(t, probe)

	start := time.Now()
	mgr, err := New(path, "c1", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := UnitName(mgr); got != unit {
		t.Fatalf("UnitName = %q, want %q", got, unit)
	}
	if err := mgr.Apply(init.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply (StartTransientUnit and wait): %s", time.Since(start))
	t.Cleanup(func() {
		exec.Command("systemctl", "stop", unit).Run()
		exec.Command("systemctl", "reset-failed", unit).Run()
	})

	// The scope runs, with the process in it, where Paths says.
	dir := mgr.Paths()[""]
	if want := "/sys/fs/cgroup/system.slice/" + unit; dir != want {
		t.Errorf("Paths[\"\"] = %q, want %q", dir, want)
	}
	if st := activeState(t, unit); st != "active" {
		t.Errorf("unit %s is %s, want active", unit, st)
	}
	cg, err := cgroups.ProcessCgroups(init.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/system.slice/" + unit; cg[""] != want {
		t.Errorf("/proc/%d/cgroup: %q, want %q", init.cmd.Process.Pid, cg[""], want)
	}
	show := systemctlShow(t, unit, "ControlGroup", "Slice", "Delegate", "MainPID")
	t.Logf("systemctl show %s: %v", unit, show)
	if show["ControlGroup"] != "/system.slice/"+unit || show["Slice"] != "system.slice" || show["Delegate"] != "yes" {
		t.Errorf("systemctl show: %v", show)
	}
	pids, err := mgr.Pids()
	if err != nil || len(pids) != 1 || pids[0] != init.cmd.Process.Pid {
		t.Errorf("Pids = %v, %v; want [%d]", pids, err, init.cmd.Process.Pid)
	}
	if got := init.say(t, "probe"); got != "open" {
		t.Errorf("before device rules: /dev/full %s", got)
	}

	// Set: systemd hears the limits, the files hold the exact values.
	start = time.Now()
	warnings, err := mgr.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mib)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](12345), Period: ptr[uint64](100000)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rwm"},
		},
	})
	if err != nil {
		t.Fatalf("Set: %v (warnings %q)", err, warnings)
	}
	t.Logf("Set: %s, warnings %q", time.Since(start), warnings)
	files := map[string]string{
		"memory.max": "67108864", "pids.max": "42", "cpu.weight": "59", "cpu.max": "12345 100000",
	}
	for f, want := range files {
		if got := readFile(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	show = systemctlShow(t, unit, "MemoryMax", "TasksMax", "CPUWeight", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "DevicePolicy", "DeviceAllow")
	t.Logf("systemctl show %s: %v", unit, show)
	for k, want := range map[string]string{
		"MemoryMax": "67108864", "TasksMax": "42", "CPUWeight": "59",
		"CPUQuotaPerSecUSec": "130ms", "CPUQuotaPeriodUSec": "100ms", "DevicePolicy": "strict",
	} {
		if show[k] != want {
			t.Errorf("systemctl show %s: %s=%q, want %q", unit, k, show[k], want)
		}
	}
	if da := show["DeviceAllow"]; !strings.Contains(da, "/dev/char/1:3 rwm") || !strings.Contains(da, "char-pts rwm") {
		t.Errorf("DeviceAllow = %q, want /dev/char/1:3 and char-pts", da)
	}
	if got := init.say(t, "probe"); got != "denied" {
		t.Errorf("after deny-all: /dev/full %s, want denied", got)
	}

	// systemd re-applies its settings on daemon-reload: the limits and
	// the device rules must survive it.
	if out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput(); err != nil {
		t.Fatalf("systemctl daemon-reload: %v\n%s", err, out)
	}
	for f, want := range files {
		got := readFile(t, filepath.Join(dir, f))
		if f == "cpu.max" {
			// When systemd re-applies, its own value: 130 ms per
			// second, never less than asked.
			t.Logf("after daemon-reload: cpu.max = %q", got)
			if got == "13000 100000" {
				continue
			}
		}
		if got != want {
			t.Errorf("after daemon-reload: %s = %q, want %q", f, got, want)
		}
	}
	if got := init.say(t, "probe"); got != "denied" {
		t.Errorf("after daemon-reload: /dev/full %s, want denied", got)
	}

	// A later invocation: Load from what the runtime stores, update,
	// join (exec).
	loaded := Load(UnitName(mgr), mgr.Paths())
	if _, err := loaded.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](128 * mib)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "memory.max")); got != "134217728" {
		t.Errorf("after update: memory.max = %q", got)
	}
	if got := systemctlShow(t, unit, "MemoryMax")["MemoryMax"]; got != "134217728" {
		t.Errorf("after update: systemd MemoryMax = %q", got)
	}
	exec1 := startShell(t, `read x; cat /proc/self/cgroup; read x`)
	if err := loaded.Apply(exec1.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := exec1.say(t, "go"); got != "0::/system.slice/"+unit {
		t.Errorf("joined process is in %q", got)
	}

	// Another container with the same cgroupsPath is refused.
	other := startShell(t, "read x")
	m2, err := New(path, "c2", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Apply(other.cmd.Process.Pid); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Apply on %s: %v, want ErrExist", unit, err)
	}

	// Destroy refuses while processes remain, and stops nothing.
	if err := loaded.Destroy(); !errors.Is(err, unix.EBUSY) {
		t.Errorf("Destroy with processes: %v, want EBUSY", err)
	}
	if st := activeState(t, unit); st != "active" {
		t.Errorf("after a refused Destroy, unit is %s", st)
	}

	// Freeze and Signal go through cgroupfs.
	if err := loaded.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := loaded.Frozen(); err != nil || !f {
		t.Errorf("Frozen = %v, %v", f, err)
	}
	if err := loaded.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	init.cmd.Wait()
	exec1.cmd.Wait()

	start = time.Now()
	if err := Load(unit, mgr.Paths()).Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	t.Logf("Destroy: %s", time.Since(start))
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Destroy: %v", dir, err)
	}
	if ls := systemctlShow(t, unit, "LoadState", "ActiveState"); ls["ActiveState"] != "inactive" {
		t.Errorf("after Destroy: %v", ls)
	}
	// Twice is fine.
	if err := Load(unit, mgr.Paths()).Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// When the last process exits, systemd stops the scope by itself; Destroy
// after that is quiet. After an OOM kill, without a Destroy, the name can
// be used again: systemd 252 ends such a scope inactive; where it ends
// failed, the unit stays loaded and Apply resets it (the fake-bus test
// TestApplyExisting covers that path).
func TestRootExitAndReuse(t *testing.T) {
	needSystemd(t)
	path, unit := testPath()
	t.Cleanup(func() {
		exec.Command("systemctl", "stop", unit).Run()
		exec.Command("systemctl", "reset-failed", unit).Run()
	})
	apply := func(sh *shell) cgroups.Manager {
		t.Helper()
		mgr, err := New(path, "c1", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := mgr.Apply(sh.cmd.Process.Pid); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		return mgr
	}

	// The last process exits: the scope and its cgroup go.
	sh := startShell(t, "read x")
	mgr := apply(sh)
	sh.stdin.Close()
	sh.cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for mgr.Exists() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if mgr.Exists() {
		t.Errorf("the scope's cgroup outlives its last process")
	}
	if err := mgr.Destroy(); err != nil {
		t.Fatalf("Destroy after exit: %v", err)
	}

	// Same name again; this time the process is OOM-killed.
	sh = startShell(t, `read x; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`)
	mgr = apply(sh)
	if _, err := mgr.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](16 * mib), Swap: ptr[int64](16 * mib)}}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(sh.stdin, "go\n")
	sh.cmd.Wait()
	st := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st = systemctlShow(t, unit, "ActiveState")["ActiveState"]; st != "active" && st != "deactivating" {
			break
		}
	}
	t.Logf("after the OOM kill: %v", systemctlShow(t, unit, "ActiveState", "Result", "LoadState"))

	// A new container of that name, without a Destroy in between.
	sh = startShell(t, "read x")
	mgr = apply(sh)
	if st := activeState(t, unit); st != "active" {
		t.Errorf("reused unit is %s", st)
	}
	sh.cmd.Process.Kill()
	sh.cmd.Wait()
	if err := mgr.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if ls := systemctlShow(t, unit, "ActiveState"); ls["ActiveState"] != "inactive" {
		t.Errorf("after Destroy: %v", ls)
	}
}

// A unit whose name ends in .slice is a slice, and the process goes in
// through cgroupfs.
func TestRootSlice(t *testing.T) {
	needSystemd(t)
	id := fmt.Sprintf("%d", os.Getpid())
	slice := "berthtest" + id + ".slice"
	sh := startShell(t, "read x; cat /proc/self/cgroup; read x")
	mgr, err := New("-.slice:x:"+slice, "c1", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Apply(sh.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("systemctl", "stop", slice).Run() })
	if got := sh.say(t, "go"); got != "0::/"+slice {
		t.Errorf("process is in %q, want /%s", got, slice)
	}
	if st := activeState(t, slice); st != "active" {
		t.Errorf("slice is %s", st)
	}
	sh.cmd.Process.Kill()
	sh.cmd.Wait()
	if err := mgr.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/" + slice); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("slice directory after Destroy: %v", err)
	}
}
