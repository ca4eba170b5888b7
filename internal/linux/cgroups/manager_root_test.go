package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups on the host")
	}
	if _, err := Detect(); err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
}

func uniqueName(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "berth-test-" + hex.EncodeToString(b)
}

// newTestManager returns a manager for "/<unique>/<sub>" and removes,
// after the test, everything it may have created: the container's
// cgroup, then the unique top directory on every hierarchy.
func newTestManager(t *testing.T, sub string) (Manager, string) {
	t.Helper()
	top := "/" + uniqueName(t)
	m, err := New(filepath.Join(top, sub), "unused", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Signal(unix.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		l, _ := Detect()
		for _, h := range l.Hierarchies {
			if err := removeTree(filepath.Join(h.Mountpoint, top)); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m, top
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
}

// start runs a command and reaps it in the background; the test ends by
// killing it if it still runs.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(name, args...))
}

func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// startPiped is start with a pipe to the command's stdin.
func startPiped(t *testing.T, name string, args ...string) (*proc, io.Writer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	return startCmd(t, cmd), w
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitSignaled waits for p to die of sig.
func (p *proc) waitSignaled(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("pid %d: got %v, want death by %v", p.pid(), err, sig)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != sig {
			t.Fatalf("pid %d: got %v, want death by %v", p.pid(), ws, sig)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("pid %d still alive 5s after the signal", p.pid())
	}
}

// cpuTicks is the user+system CPU time of pid, from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	// Fields after "(comm) ": state is f[0], utime f[11], stime f[12].
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

func burnsCPU(t *testing.T, pid int) bool {
	t.Helper()
	before := cpuTicks(t, pid)
	time.Sleep(200 * time.Millisecond)
	return cpuTicks(t, pid) > before
}

// checkPlaced verifies that /proc/PID/cgroup shows pid in m's directory on
// every hierarchy of the host.
func checkPlaced(t *testing.T, m Manager, pid int) {
	t.Helper()
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := ProcessCgroups(pid)
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	for _, h := range l.Hierarchies {
		key := ""
		if !h.Unified {
			key = h.Controllers[0]
		}
		rel, err := filepath.Rel(h.Root, cgs[key])
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Join(h.Mountpoint, rel); got != paths[key] {
			t.Errorf("pid %d on %s: in %s, want %s", pid, h.Mountpoint, got, paths[key])
		}
	}
}

func TestManagerLifecycle(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if m.Exists() {
		t.Fatal("Exists before Apply")
	}
	p := start(t, "sleep", "100")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("not Exists after Apply")
	}
	checkPlaced(t, m, p.pid())
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pids, []int{p.pid()}) {
		t.Fatalf("Pids() = %v, want [%d]", pids, p.pid())
	}

	// A Manager rebuilt from the stored paths acts on the same cgroup.
	m2 := Load(m.Paths())
	if err := m2.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitSignaled(t, syscall.SIGKILL)

	if err := m2.Destroy(); err != nil {
		t.Fatal(err)
	}
	for k, d := range m.Paths() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q: %s left after Destroy (%v)", k, d, err)
		}
	}
	if m.Exists() {
		t.Error("Exists after Destroy")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestApplyCreateOnly(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("Apply(-1) created nothing")
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 0 {
		t.Fatalf("Pids() = %v, %v; want none", pids, err)
	}
	if err := m.Apply(0); err == nil {
		t.Fatal("Apply(0) accepted: it would move the caller")
	}
}

// freezeThaw checks that a CPU-burning process stops while frozen and runs
// again once thawed.
func freezeThaw(t *testing.T, m Manager) {
	p := start(t, "sh", "-c", "while :; do :; done")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v before Freeze", f, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v after Freeze", f, err)
	}
	if burnsCPU(t, p.pid()) {
		t.Error("process ran while frozen")
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v after Thaw", f, err)
	}
	if !burnsCPU(t, p.pid()) {
		t.Error("process did not run after Thaw")
	}
}

func TestFreezeThaw(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	freezeThaw(t, m)
}

// onlyUnified rebuilds m with its cgroup2 directory alone, which makes the
// cgroup2 paths of a hybrid host testable: cgroup.freeze, cgroup.kill and
// Pids from cgroup2.
func onlyUnified(t *testing.T, m Manager) Manager {
	d := m.Paths()[""]
	if d == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	return Load(map[string]string{"": d})
}

func TestFreezeThawUnified(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	u := onlyUnified(t, m)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.Paths()[""], "cgroup.freeze")); err != nil {
		t.Skipf("kernel without the cgroup2 freezer: %v", err)
	}
	freezeThaw(t, u)
}

// A tree of processes, some in a child cgroup, dies of one Signal; with
// the freezer path (SIGTERM, or SIGKILL without cgroup.kill) and with
// cgroup.kill.
func TestSignalTree(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name    string
		sig     syscall.Signal
		unified bool
	}{
		{"SIGTERM freezer", syscall.SIGTERM, false},
		{"SIGKILL without cgroup2", syscall.SIGKILL, false},
		{"SIGKILL cgroup.kill", syscall.SIGKILL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestManager(t, "c1")
			if err := m.Apply(-1); err != nil {
				t.Fatal(err)
			}
			target := m
			if tc.unified {
				target = onlyUnified(t, m)
				if _, err := os.Stat(filepath.Join(m.Paths()[""], "cgroup.kill")); err != nil {
					t.Skipf("kernel without cgroup.kill: %v", err)
				}
			} else {
				// Leave cgroup2 out so that the freeze-and-signal path runs.
				paths := m.Paths()
				delete(paths, "")
				if len(paths) == 0 {
					t.Skip("host has only cgroup2")
				}
				target = Load(paths)
			}
			// sh forks its sleeps once it reads a line, which it gets
			// after joining, so they inherit the cgroup.
			sh, stdin := startPiped(t, "sh", "-c", "read x; sleep 100 & sleep 100 & wait")
			if err := m.Apply(sh.pid()); err != nil {
				t.Fatal(err)
			}
			if _, err := stdin.Write([]byte("go\n")); err != nil {
				t.Fatal(err)
			}
			other := start(t, "sleep", "100")
			sub := Load(subPaths(m, "sub"))
			if err := sub.Apply(other.pid()); err != nil {
				t.Fatal(err)
			}
			// cgroup2's rule: a cgroup holding processes passes on no
			// controller (not even the threaded ones, which would make
			// it a thread root).
			if d := m.Paths()[""]; d != "" {
				if on, err := readFile(filepath.Join(d, "cgroup.subtree_control")); err != nil || on != "" {
					t.Errorf("%s/cgroup.subtree_control = %q (%v), want none with sh in it", d, on, err)
				}
			}
			var pids []int
			for deadline := time.Now().Add(5 * time.Second); len(pids) < 4 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				var err error
				if pids, err = target.Pids(); err != nil {
					t.Fatal(err)
				}
			}
			if len(pids) != 4 {
				t.Fatalf("Pids() = %v, want sh, two sleeps and the child cgroup's sleep", pids)
			}
			if err := target.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			sh.waitSignaled(t, tc.sig)
			other.waitSignaled(t, tc.sig)
			for _, p := range pids {
				// The orphaned sleeps are reaped by init; wait for them.
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if unix.Kill(p, 0) != nil || isZombie(p) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("pid %d survived %v", p, tc.sig)
					}
				}
			}
			if f, _ := m.Frozen(); f {
				t.Error("cgroup left frozen after Signal")
			}
			if err := m.Destroy(); err != nil {
				t.Fatalf("Destroy with a child cgroup: %v", err)
			}
			if m.Exists() {
				t.Error("Exists after Destroy")
			}
		})
	}
}

func subPaths(m Manager, sub string) map[string]string {
	out := m.Paths()
	for k, d := range out {
		out[k] = filepath.Join(d, sub)
	}
	return out
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	return strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z")
}

func TestDestroyBusy(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t, "c1")
	p := start(t, "sleep", "100")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	err := m.Destroy()
	if !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Destroy with a live process: got %v, want EBUSY", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Path, "/") || !strings.Contains(err.Error(), pe.Path) {
		t.Errorf("Destroy error %q does not name the path", err)
	}
}

// The v1 cpuset hierarchy: a new cgroup has empty cpus and mems and the
// kernel refuses tasks in it, so Apply fills them from the nearest
// ancestor, through intermediate levels that are empty too.
func TestApplyCpusetFromAncestor(t *testing.T) {
	requireRoot(t)
	l, _ := Detect()
	h, ok := l.HierarchyOf("cpuset")
	if !ok || h.Unified {
		t.Skip("no v1 cpuset hierarchy on this host")
	}
	m, top := newTestManager(t, "mid/leaf")
	// A pre-existing, empty-populated parent, as another tool would leave it.
	if err := os.Mkdir(filepath.Join(h.Mountpoint, top), 0o755); err != nil {
		t.Fatal(err)
	}
	if v, _ := readFile(filepath.Join(h.Mountpoint, top, "cpuset.cpus")); v != "" {
		t.Skipf("host sets cgroup.clone_children on the cpuset root (%q): nothing to fill", v)
	}
	p := start(t, "sleep", "100")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	checkPlaced(t, m, p.pid())
	leaf := m.Paths()["cpuset"]
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		want, _ := readFile(filepath.Join(h.Mountpoint, f))
		for _, d := range []string{filepath.Join(h.Mountpoint, top), filepath.Dir(leaf), leaf} {
			if got, _ := readFile(filepath.Join(d, f)); got != want {
				t.Errorf("%s/%s = %q, want %q from the root", d, f, got, want)
			}
		}
	}
}

func TestRelativePathUnderOwnCgroup(t *testing.T) {
	requireRoot(t)
	name := uniqueName(t)
	m, err := New("", name, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy() })
	l, _ := Detect()
	own, _ := ProcessCgroups(0)
	for _, h := range l.Hierarchies {
		key, cg := "", ""
		if h.Unified {
			cg = filepath.Dir(own[""])
		} else {
			key = h.Controllers[0]
			cg = own[key]
		}
		rel, _ := filepath.Rel(h.Root, cg)
		if want := filepath.Join(h.Mountpoint, rel, name); m.Paths()[key] != want {
			t.Errorf("%q: %s, want %s", key, m.Paths()[key], want)
		}
	}
	p := start(t, "sleep", "100")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	checkPlaced(t, m, p.pid())
	if err := m.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitSignaled(t, syscall.SIGKILL)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// A control file opened before its cgroup is removed answers the write
// with ENODEV, the shape of systemd removing a scope's cgroup while a
// delete --force kills it: gone must count it as a cgroup with nobody
// left to signal, as it does ENOENT.
func TestGoneRemovedCgroup(t *testing.T) {
	requireRoot(t)
	l, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	var root string
	for _, h := range l.Hierarchies {
		if h.Unified {
			root = h.Mountpoint
		}
	}
	if root == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	dir := filepath.Join(root, uniqueName(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("0")
	if err == nil {
		t.Fatal("a write to the control file of a removed cgroup succeeded")
	}
	if !gone(err) {
		t.Errorf("gone(%v) = false for the control file of a removed cgroup", err)
	}
	if _, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0); !gone(err) {
		t.Errorf("gone(%v) = false for a removed cgroup's path", err)
	}
}
