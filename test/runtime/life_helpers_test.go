package runtime_test

// Helpers shared by the life_*_test.go files. Every name starts with "life"
// so that other test files of the package cannot collide with them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
	"golang.org/x/sys/unix"
)

var lifeSeq atomic.Int64

var lifeBadIDChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// lifeID returns a container id unique across the tests of this binary and
// other test binaries running at the same time: container cgroups are named
// after the id, and they are shared by every runtime root on the host.
func lifeID(t testing.TB) string {
	name := strings.ToLower(lifeBadIDChars.ReplaceAllString(strings.TrimPrefix(t.Name(), "TestLife"), "-"))
	name = strings.Trim(name, "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("life-%s-%d-%d", name, os.Getpid(), lifeSeq.Add(1))
}

// lifeResult is what one runtime invocation produced.
type lifeResult struct {
	Stdout, Stderr string
	Code           int // exit status; -1 if it did not run or was killed
	Err            error
	Elapsed        time.Duration
}

func (r lifeResult) String() string {
	return fmt.Sprintf("exit %d (%v)\nstdout: %s\nstderr: %s", r.Code, r.Err, r.Stdout, r.Stderr)
}

// lifeRun runs the runtime with stdout and stderr going to regular files,
// never pipes: a created or detached container inherits them, and with pipes
// the caller would wait for the container to exit. stdin is /dev/null.
func lifeRun(t testing.TB, r *runtimetest.Runtime, args ...string) lifeResult {
	t.Helper()
	return lifeRunCmd(t, r.Command(args...), 60*time.Second)
}

func lifeRunCmd(t testing.TB, cmd *exec.Cmd, timeout time.Duration) lifeResult {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	res := lifeResult{Code: -1}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		res.Err = err
		return res
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case res.Err = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		res.Err = fmt.Errorf("timed out after %s", timeout)
	}
	res.Elapsed = time.Since(start)
	if res.Err == nil {
		res.Code = 0
	} else if ee, ok := res.Err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	res.Stdout, res.Stderr = string(o), string(e)
	return res
}

// lifeMust runs the runtime through lifeRun and fails the test unless it
// exits 0.
func lifeMust(t testing.TB, r *runtimetest.Runtime, args ...string) lifeResult {
	t.Helper()
	res := lifeRun(t, r, args...)
	if res.Code != 0 {
		t.Fatalf("berth-runtime %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// lifeFail runs the runtime and fails the test unless it exits non-zero
// with every one of wants (case-insensitive) in its stderr.
func lifeFail(t testing.TB, r *runtimetest.Runtime, wants []string, args ...string) lifeResult {
	t.Helper()
	res := lifeRun(t, r, args...)
	if res.Code == 0 || res.Code == -1 {
		t.Errorf("berth-runtime %s: want a failure, got %s", strings.Join(args, " "), res)
		return res
	}
	lifeWantMsg(t, "berth-runtime "+strings.Join(args, " ")+": stderr", res.Stderr, wants...)
	return res
}

// lifeWantMsg checks that msg contains every one of wants, ignoring case.
func lifeWantMsg(t testing.TB, what, msg string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
			t.Errorf("%s does not mention %q: %q", what, w, msg)
		}
	}
}

// lifeStart creates and starts b as id, detached, and returns the init pid.
func lifeStart(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) int {
	t.Helper()
	lifeMust(t, r, "create", "--bundle", b.Dir, id)
	lifeMust(t, r, "start", id)
	s := r.State(id)
	if s.Status != "running" || s.Pid <= 0 {
		t.Fatalf("after start: status %q pid %d, want running with a pid", s.Status, s.Pid)
	}
	return s.Pid
}

// lifeStateErr runs state and returns its error, nil if the container
// exists.
func lifeStateErr(r *runtimetest.Runtime, id string) error {
	_, _, err := r.Exec("state", id)
	return err
}

// lifeListIDs returns the ids `list -q` prints.
func lifeListIDs(t testing.TB, r *runtimetest.Runtime) []string {
	t.Helper()
	return strings.Fields(r.Must("list", "-q"))
}

// lifeProcStart returns the start time of pid (field 22 of its stat) and
// its state letter; ok is false when the process does not exist.
func lifeProcStart(pid int) (start uint64, state byte, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err == nil
}

// lifeAlive reports whether pid is a live (not zombie) process.
func lifeAlive(pid int) bool {
	_, st, ok := lifeProcStart(pid)
	return ok && st != 'Z' && st != 'X'
}

// lifeWaitGone waits until the process pid that started at start no longer
// exists (a zombie counts as existing: its parent has not reaped it).
func lifeWaitGone(pid int, start uint64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		s, _, ok := lifeProcStart(pid)
		if !ok || s != start {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifeWaitCatches waits until pid has a handler for sig (SigCgt in its
// status). A probe that is pid 1 of its namespace drops a signal that
// arrives before its Go runtime installed its handlers, so tests that stop
// it with SIGTERM wait for this first.
func lifeWaitCatches(t testing.TB, pid int, sig syscall.Signal) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("process %d: %v", pid, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err == nil && mask&(1<<(uint(sig)-1)) != 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d does not catch %v after 10s", pid, sig)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lifeWaitDead waits until pid is dead or a zombie.
func lifeWaitDead(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for lifeAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// lifeCgroupMount is one mounted cgroup hierarchy of the host.
type lifeCgroupMount struct {
	Mountpoint  string
	Root        string
	Unified     bool
	Controllers []string // v1: super options naming controllers or name=...
}

// lifeCgroupMounts returns the host's cgroup hierarchies from
// /proc/self/mountinfo, one per hierarchy.
func lifeCgroupMounts(t testing.TB) []lifeCgroupMount {
	t.Helper()
	layout, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	var out []lifeCgroupMount
	for _, h := range layout.Hierarchies {
		m := lifeCgroupMount{Mountpoint: h.Mountpoint, Root: h.Root, Unified: h.Unified}
		if !h.Unified {
			m.Controllers = h.Controllers
		}
		out = append(out, m)
	}
	return out
}

func lifeUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// lifeProcCgroup is one line of /proc/PID/cgroup resolved to a host
// directory.
type lifeProcCgroup struct {
	Line        string
	Controllers string // "" for the unified hierarchy
	Path        string // as the line shows it
	Dir         string // the directory on the host
}

// lifeCgroupsOf reads /proc/pid/cgroup and resolves each line under the
// mount point of its hierarchy.
func lifeCgroupsOf(t testing.TB, pid int) []lifeProcCgroup {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("read cgroups of %d: %v", pid, err)
	}
	mounts := lifeCgroupMounts(t)
	var out []lifeProcCgroup
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		c := lifeProcCgroup{Line: line, Controllers: parts[1], Path: parts[2]}
		for _, m := range mounts {
			match := false
			if c.Controllers == "" {
				match = m.Unified
			} else if !m.Unified {
				want := strings.Split(c.Controllers, ",")
				match = len(want) == len(m.Controllers)
				for _, w := range want {
					match = match && slices.Contains(m.Controllers, w)
				}
			}
			if !match {
				continue
			}
			rel := c.Path
			if m.Root != "/" {
				rel = strings.TrimPrefix(rel, m.Root)
			}
			c.Dir = filepath.Join(m.Mountpoint, rel)
		}
		if c.Dir == "" {
			// A hierarchy that is not mounted here (e.g. an empty v2 line on
			// a pure v1 host): nothing to check on it.
			continue
		}
		out = append(out, c)
	}
	return out
}

// lifeMountsUnder returns the lines of /proc/self/mountinfo whose mount point
// or root lies in dir.
func lifeMountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		root, mp := lifeUnescape(f[3]), lifeUnescape(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") || root == dir || strings.HasPrefix(root, dir+"/") {
			out = append(out, line)
		}
	}
	return out
}

// lifeTrace records what a container holds on the host, to check that
// delete leaves none of it behind.
type lifeTrace struct {
	id        string
	stateDir  string
	bundle    string
	pid       int
	pidStart  uint64
	cgroups   []lifeProcCgroup
	mountBase []string // mounts under the bundle before the container (the fixture's overlay)
}

// lifeBaseline records the mounts under the bundle before the container
// exists; call it before create.
func lifeBaseline(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) *lifeTrace {
	t.Helper()
	return &lifeTrace{id: id, stateDir: filepath.Join(r.Root, id), bundle: b.Dir, mountBase: lifeMountsUnder(t, b.Dir)}
}

// record notes the init and its cgroups; the container must be alive.
func (tr *lifeTrace) record(t testing.TB, pid int) {
	t.Helper()
	tr.pid = pid
	start, _, ok := lifeProcStart(pid)
	if !ok {
		t.Fatalf("container init %d does not exist", pid)
	}
	tr.pidStart = start
	tr.cgroups = lifeCgroupsOf(t, pid)
	own := map[string]string{}
	for _, c := range lifeCgroupsOf(t, os.Getpid()) {
		own[c.Controllers] = c.Path
	}
	for _, c := range tr.cgroups {
		if st, err := os.Stat(c.Dir); err != nil || !st.IsDir() {
			t.Errorf("cgroup %q of the container: %s is not a directory: %v", c.Line, c.Dir, err)
		}
		if own[c.Controllers] == c.Path {
			t.Errorf("cgroup %q: the container shares the test's own cgroup %s", c.Line, c.Path)
		}
	}
	if len(tr.cgroups) == 0 {
		t.Errorf("container init %d is in no cgroup", pid)
	}
}

// assertGone checks that nothing of the container is left.
func (tr *lifeTrace) assertGone(t testing.TB, r *runtimetest.Runtime) {
	t.Helper()
	if err := lifeStateErr(r, tr.id); err == nil {
		t.Errorf("state %s still works after delete", tr.id)
	}
	if ids := lifeListIDs(t, r); slices.Contains(ids, tr.id) {
		t.Errorf("list still shows %s: %v", tr.id, ids)
	}
	if _, err := os.Lstat(tr.stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left behind (lstat: %v)", tr.stateDir, err)
	}
	if tr.pid > 0 && !lifeWaitGone(tr.pid, tr.pidStart, 5*time.Second) {
		_, st, _ := lifeProcStart(tr.pid)
		t.Errorf("container init %d still exists (state %c)", tr.pid, st)
	}
	for _, c := range tr.cgroups {
		if _, err := os.Lstat(c.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup directory %s (%q) left behind (lstat: %v)", c.Dir, c.Line, err)
		}
	}
	for _, m := range lifeMountsUnder(t, tr.bundle) {
		if !slices.Contains(tr.mountBase, m) {
			t.Errorf("mount left behind under the bundle: %s", m)
		}
	}
}

// lifeCgroupDirsFor returns the directory of cgroupsPath p (from
// lifeUniqueCgroup) on every hierarchy of the host.
func lifeCgroupDirsFor(t testing.TB, p string) []string {
	t.Helper()
	var out []string
	for _, m := range lifeCgroupMounts(t) {
		out = append(out, filepath.Join(m.Mountpoint, runtimetest.CgroupDir(p)))
	}
	return out
}

// lifeUniqueCgroup returns a cgroupsPath for one test: absolute for
// cgroupfs, a scope in a test slice for the systemd driver.
func lifeUniqueCgroup(t testing.TB) string {
	return runtimetest.CgroupsPath("berth-test", lifeID(t))
}

// lifeNoLeftovers checks that a failed create of id left nothing: list is
// empty, no state directory, no cgroup directory at cgroupsPath (absolute,
// see lifeUniqueCgroup), no new mount under the bundle.
func lifeNoLeftovers(t testing.TB, r *runtimetest.Runtime, id, cgroupsPath string, bundle string, mountBase []string) {
	t.Helper()
	if ids := lifeListIDs(t, r); len(ids) != 0 {
		t.Errorf("list after the failure: %v, want empty", ids)
	}
	entries, _ := os.ReadDir(r.Root)
	for _, e := range entries {
		t.Errorf("left in the state root: %s", e.Name())
	}
	if id != "" {
		if _, err := os.Lstat(filepath.Join(r.Root, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state directory of %s left behind (lstat: %v)", id, err)
		}
	}
	if cgroupsPath != "" {
		for _, d := range lifeCgroupDirsFor(t, cgroupsPath) {
			if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup directory %s left behind (lstat: %v)", d, err)
			}
		}
	}
	if bundle != "" {
		for _, m := range lifeMountsUnder(t, bundle) {
			if !slices.Contains(mountBase, m) {
				t.Errorf("mount left behind under the bundle: %s", m)
			}
		}
	}
}

// lifeNamespaces returns the namespace inodes of pid, by /proc/PID/ns name.
func lifeNamespaces(t testing.TB, pid int) map[string]uint64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/ns", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	out := map[string]uint64{}
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			t.Fatalf("stat %s/%s: %v", dir, e.Name(), err)
		}
		out[e.Name()] = st.Ino
	}
	return out
}

// lifeDecode decodes one JSON value from s, failing the test otherwise.
func lifeDecode(t testing.TB, what, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), v); err != nil {
		t.Fatalf("%s: not the expected JSON: %v\n%s", what, err, s)
	}
}

// lifeShiftOwners adds delta to the owner and group of every entry of the
// tree at root, for a rootfs used with a user namespace.
func lifeShiftOwners(t testing.TB, root string, delta int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if err := os.Lchown(p, int(st.Uid)+delta, int(st.Gid)+delta); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			// chown clears set-id bits; keep the mode as it was.
			return os.Chmod(p, fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("shift owners of %s: %v", root, err)
	}
}

// lifeOpenPath makes every directory from dir up to / searchable by others,
// so that a container root mapped to an unprivileged host uid can reach its
// rootfs in a test's temporary directory.
func lifeOpenPath(t testing.TB, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}
