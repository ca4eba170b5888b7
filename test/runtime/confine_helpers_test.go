package runtime_test

// Helpers shared by the confine_*_test.go files (resources, devices,
// freezer, events, seccomp). Every name starts with "confine" so that the
// other test files of the package cannot collide with them.
//
// The cgroup helpers read the container's cgroup files from the host,
// whatever its layout: cgroup v1 controllers (each at its own mount point,
// possibly next to a cgroup2 hierarchy holding the rest, as on a hybrid
// host) or a pure cgroup2 host, where the same facts live in files with
// other names (memory.max rather than memory.limit_in_bytes, ...).
//
// Why "package runtime_test_test": doc.go (a non-test file) declares
// package runtime_test, and the go tool reads the files in name order. A
// _test.go file named before doc.go ("confine_...") declaring
// "runtime_test" is taken for the external test package of a package
// "runtime", and the build fails with "found packages runtime and
// runtime_test". These files are therefore the external tests of
// runtime_test: they share nothing with the life_/spec_ files, and need
// nothing from them. Renaming doc.go to doc_test.go would allow
// "package runtime_test" here.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

var confineSeq atomic.Int64

var confineBadIDChars = regexp.MustCompile(`[^a-z0-9]+`)

// confineID returns a container id unique across the tests of this binary
// and other test binaries on the host (cgroups are shared by all of them).
func confineID(t testing.TB) string {
	name := strings.TrimPrefix(t.Name(), "TestConfine")
	name = strings.Trim(confineBadIDChars.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 32 {
		name = name[len(name)-32:]
	}
	return fmt.Sprintf("confine-%s-%d-%d", name, os.Getpid(), confineSeq.Add(1))
}

// confineCgroupsPath is the linux.cgroupsPath of container id: absolute for
// cgroupfs, a scope in a test slice for the systemd driver.
func confineCgroupsPath(id string) string { return runtimetest.CgroupsPath("berth-test-confine", id) }

// confineCgroupDir is the cgroup of container id from each hierarchy's root.
func confineCgroupDir(id string) string { return runtimetest.CgroupDir(confineCgroupsPath(id)) }

// confineBundle returns a bundle whose cgroupsPath is that of id, with
// opts applied to the spec; the caller edits Spec and calls Save as needed.
func confineBundle(t testing.TB, id string, opts ...fixture.Option) *fixture.OCIBundle {
	t.Helper()
	opts = append([]fixture.Option{fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.CgroupsPath = confineCgroupsPath(id)
	})}, opts...)
	return fixture.Bundle(t, opts...)
}

// confineV2 reports whether /sys/fs/cgroup is a pure cgroup2 hierarchy.
func confineV2(t testing.TB) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatalf("statfs /sys/fs/cgroup: %v", err)
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// confineMounts returns the mount point of every cgroup hierarchy of the
// host: "" for cgroup2, else each v1 controller (and name=...) of it.
func confineMounts(t testing.TB) map[string]string {
	t.Helper()
	layout, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range layout.Hierarchies {
		if h.Root != "/" {
			continue
		}
		if h.Unified {
			out[""] = h.Mountpoint
			continue
		}
		for _, c := range h.Controllers {
			out[c] = h.Mountpoint
		}
	}
	return out
}

// confineAllDirs returns the directory of cgroup cg on every hierarchy.
func confineAllDirs(t testing.TB, cg string) []string {
	t.Helper()
	var dirs []string
	for _, mp := range confineMounts(t) {
		d := filepath.Join(mp, cg)
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// confineCgroup is a container's cgroup as the host sees it.
type confineCgroup struct {
	t    testing.TB
	path string // the cgroup, from each hierarchy's root
	v2   bool
	mnt  map[string]string
}

func confineCgroupOf(t testing.TB, id string) *confineCgroup {
	t.Helper()
	return &confineCgroup{t: t, path: confineCgroupDir(id), v2: confineV2(t), mnt: confineMounts(t)}
}

// dir returns the container's directory for controller ctrl: on cgroup2
// the one directory, on v1 that of the controller's hierarchy.
func (c *confineCgroup) dir(ctrl string) string {
	c.t.Helper()
	if c.v2 {
		return filepath.Join("/sys/fs/cgroup", c.path)
	}
	mp, ok := c.mnt[ctrl]
	if !ok {
		c.t.Fatalf("no cgroup v1 hierarchy with the %s controller", ctrl)
	}
	return filepath.Join(mp, c.path)
}

// file is the host path of v1name (v1) or v2name (cgroup2) for ctrl.
func (c *confineCgroup) file(ctrl, v1name, v2name string) string {
	c.t.Helper()
	if c.v2 {
		return filepath.Join(c.dir(ctrl), v2name)
	}
	return filepath.Join(c.dir(ctrl), v1name)
}

// read returns the trimmed content of the file (see file).
func (c *confineCgroup) read(ctrl, v1name, v2name string) string {
	c.t.Helper()
	p := c.file(ctrl, v1name, v2name)
	data, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(data))
}

// exists reports whether the file exists (see file).
func (c *confineCgroup) exists(ctrl, v1name, v2name string) bool {
	c.t.Helper()
	_, err := os.Stat(c.file(ctrl, v1name, v2name))
	return err == nil
}

// confineLimits are the resource values the tests set and read back, in
// the spec's (v1) units.
type confineLimits struct {
	Memory, Swap   int64
	Shares         uint64
	Quota          int64
	Period         uint64
	Cpus           string
	Pids           int64
	BlkioWeight    uint16
	BlkioWeightSet bool // check BlkioWeight
}

// confineWeightV1ToV2 are the two shares-to-weight conversions runc has
// used on cgroup2: the linear one (runc < 1.3) and the quadratic-log one
// (opencontainers/cgroups since 2025). Either is accepted.
func confineWeightV1ToV2(shares uint64) []uint64 {
	linear := 1 + ((shares-2)*9999)/262142
	l := math.Log2(float64(shares))
	quad := uint64(math.Ceil(math.Pow(10, (l*l+125*l)/612.0-7.0/34.0)))
	return []uint64{linear, quad}
}

// check compares the cgroup files with want; what labels the messages.
func (c *confineCgroup) check(what string, want confineLimits) {
	c.t.Helper()
	t := c.t
	if c.v2 {
		if got := c.read("memory", "", "memory.max"); got != strconv.FormatInt(want.Memory, 10) {
			t.Errorf("%s: memory.max = %s, want %d", what, got, want.Memory)
		}
		if c.exists("memory", "", "memory.swap.max") {
			if got := c.read("memory", "", "memory.swap.max"); got != strconv.FormatInt(want.Swap-want.Memory, 10) {
				t.Errorf("%s: memory.swap.max = %s, want %d (memory+swap %d minus memory %d)", what, got, want.Swap-want.Memory, want.Swap, want.Memory)
			}
		}
		if got := c.read("cpu", "", "cpu.weight"); !slices.Contains(confineStrings(confineWeightV1ToV2(want.Shares)), got) {
			t.Errorf("%s: cpu.weight = %s, want one of %v (cpu shares %d)", what, got, confineWeightV1ToV2(want.Shares), want.Shares)
		}
		if got, w := c.read("cpu", "", "cpu.max"), fmt.Sprintf("%d %d", want.Quota, want.Period); got != w {
			t.Errorf("%s: cpu.max = %q, want %q", what, got, w)
		}
	} else {
		if got := c.read("memory", "memory.limit_in_bytes", ""); got != strconv.FormatInt(want.Memory, 10) {
			t.Errorf("%s: memory.limit_in_bytes = %s, want %d", what, got, want.Memory)
		}
		if c.exists("memory", "memory.memsw.limit_in_bytes", "") {
			if got := c.read("memory", "memory.memsw.limit_in_bytes", ""); got != strconv.FormatInt(want.Swap, 10) {
				t.Errorf("%s: memory.memsw.limit_in_bytes = %s, want %d", what, got, want.Swap)
			}
		}
		if got := c.read("cpu", "cpu.shares", ""); got != strconv.FormatUint(want.Shares, 10) {
			t.Errorf("%s: cpu.shares = %s, want %d", what, got, want.Shares)
		}
		if got := c.read("cpu", "cpu.cfs_quota_us", ""); got != strconv.FormatInt(want.Quota, 10) {
			t.Errorf("%s: cpu.cfs_quota_us = %s, want %d", what, got, want.Quota)
		}
		if got := c.read("cpu", "cpu.cfs_period_us", ""); got != strconv.FormatUint(want.Period, 10) {
			t.Errorf("%s: cpu.cfs_period_us = %s, want %d", what, got, want.Period)
		}
	}
	if got := c.read("cpuset", "cpuset.cpus", "cpuset.cpus"); got != want.Cpus {
		t.Errorf("%s: cpuset.cpus = %q, want %q", what, got, want.Cpus)
	}
	if got := c.read("pids", "pids.max", "pids.max"); got != strconv.FormatInt(want.Pids, 10) {
		t.Errorf("%s: pids.max = %s, want %d", what, got, want.Pids)
	}
	if want.BlkioWeightSet {
		file, got, ok := c.blkioWeight()
		if !ok {
			t.Errorf("%s: no blkio weight file", what)
		} else if !slices.Contains(c.blkioWant(file, want.BlkioWeight), got) {
			t.Errorf("%s: %s = %d, want %v (blkio weight %d)", what, file, got, c.blkioWant(file, want.BlkioWeight), want.BlkioWeight)
		}
	}
}

// blkioWeight returns the weight file the host has for the container and
// its default weight; ok is false when there is none (neither CFQ nor BFQ
// group scheduling, or no io controller on cgroup2).
func (c *confineCgroup) blkioWeight() (file string, weight uint64, ok bool) {
	c.t.Helper()
	names := []string{"blkio.bfq.weight", "blkio.weight"}
	ctrl := "blkio"
	if c.v2 {
		names, ctrl = []string{"io.bfq.weight", "io.weight"}, "io"
	}
	if !c.v2 {
		if _, has := c.mnt["blkio"]; !has {
			return "", 0, false
		}
	}
	for _, n := range names {
		p := filepath.Join(c.dir(ctrl), n)
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// "500", or "default 500" followed by per-device lines.
		first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		first = strings.TrimSpace(strings.TrimPrefix(first, "default"))
		v, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			c.t.Fatalf("parse %s: %q", p, data)
		}
		return n, v, true
	}
	return "", 0, false
}

// blkioWant is what file shows for the spec's blkio weight w.
func (c *confineCgroup) blkioWant(file string, w uint16) []uint64 {
	if file == "io.weight" {
		return []uint64{1 + (uint64(w)-10)*9999/990}
	}
	return []uint64{uint64(w)}
}

func confineStrings(vs []uint64) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strconv.FormatUint(v, 10))
	}
	return out
}

// confineHostCPUs returns the CPUs a container may use on this host, as
// the root cpuset shows them ("0-1").
func confineHostCPUs(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/sys/fs/cgroup/cpuset.cpus.effective", "/sys/fs/cgroup/cpuset/cpuset.effective_cpus",
		"/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/devices/system/cpu/online"} {
		if data, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(data)) != "" {
			return strings.TrimSpace(string(data))
		}
	}
	t.Fatal("cannot tell the host's CPUs")
	return ""
}

// confineFirstCPU returns the lowest CPU number of a cpuset list.
func confineFirstCPU(t testing.TB, list string) int {
	t.Helper()
	first := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '-' })[0]
	n, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("cpuset %q: %v", list, err)
	}
	return n
}

// confineStarted is a created (and maybe started) container whose stdio
// goes to files, so that the runtime returns while it runs.
type confineStarted struct {
	id             string
	pid            int
	stdout, stderr string
}

// confineCreate runs `create` for b with the container's stdout and stderr
// going to files; it fails the test if create fails.
func confineCreate(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) *confineStarted {
	t.Helper()
	c, res := confineTryCreate(t, r, b, id)
	if res.Code != 0 {
		t.Fatalf("create %s: %s", id, res)
	}
	return c
}

// confineTryCreate is confineCreate that returns the result instead.
func confineTryCreate(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) (*confineStarted, confineResult) {
	t.Helper()
	b.Save(t)
	dir := t.TempDir()
	c := &confineStarted{id: id, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	res := confineRunCmd(t, r.Command("create", "--bundle", b.Dir, id), c.stdout, c.stderr, 60*time.Second)
	if res.Code == 0 {
		c.pid = r.State(id).Pid
	}
	return c, res
}

// confineStart creates and starts b as id, detached.
func confineStart(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string) *confineStarted {
	t.Helper()
	c := confineCreate(t, r, b, id)
	confineMust(t, r, "start", id)
	return c
}

// output returns what the container wrote so far.
func (c *confineStarted) output(t testing.TB) (stdout, stderr string) {
	t.Helper()
	o, _ := os.ReadFile(c.stdout)
	e, _ := os.ReadFile(c.stderr)
	return string(o), string(e)
}

// confineResult is what one runtime invocation produced.
type confineResult struct {
	Stdout, Stderr string
	Code           int // -1: did not run, timed out or killed by a signal
	Err            error
}

func (r confineResult) String() string {
	return fmt.Sprintf("exit %d (%v)\nstdout: %s\nstderr: %s", r.Code, r.Err, r.Stdout, r.Stderr)
}

// confineRunCmd runs cmd with stdout and stderr going to the named files
// (regular files, never pipes, as a container inherits them) and stdin
// from /dev/null.
func confineRunCmd(t testing.TB, cmd *exec.Cmd, stdoutPath, stderrPath string, timeout time.Duration) confineResult {
	t.Helper()
	if stdoutPath == "" || stderrPath == "" {
		dir := t.TempDir()
		stdoutPath, stderrPath = filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	}
	out, err := os.Create(stdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	res := confineResult{Code: -1}
	if res.Err = cmd.Start(); res.Err == nil {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case res.Err = <-done:
		case <-time.After(timeout):
			cmd.Process.Kill()
			<-done
			res.Err = fmt.Errorf("timed out after %s", timeout)
		}
		var ee *exec.ExitError
		if res.Err == nil {
			res.Code = 0
		} else if errors.As(res.Err, &ee) {
			res.Code = ee.ExitCode()
		}
	}
	o, _ := os.ReadFile(stdoutPath)
	e, _ := os.ReadFile(stderrPath)
	res.Stdout, res.Stderr = string(o), string(e)
	return res
}

// confineExec runs the runtime with args (stdio to files).
func confineExec(t testing.TB, r *runtimetest.Runtime, args ...string) confineResult {
	t.Helper()
	return confineRunCmd(t, r.Command(args...), "", "", 60*time.Second)
}

// confineMust is confineExec that fails the test unless the runtime exits 0.
func confineMust(t testing.TB, r *runtimetest.Runtime, args ...string) confineResult {
	t.Helper()
	res := confineExec(t, r, args...)
	if res.Code != 0 {
		t.Fatalf("berth-runtime %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// confineRun runs b in the foreground with args as the process.
func confineRun(t testing.TB, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, args ...string) confineResult {
	t.Helper()
	b.Spec.Process.Args = args
	b.Save(t)
	return confineExec(t, r, "run", "--bundle", b.Dir, id)
}

// confineFails checks that res is a failure (not a crash or a time-out)
// whose stderr mentions every one of wants, ignoring case.
func confineFails(t testing.TB, what string, res confineResult, wants ...string) {
	t.Helper()
	if res.Code <= 0 {
		t.Errorf("%s: want a failure, got %s", what, res)
		return
	}
	t.Logf("%s: refused: %s", what, strings.TrimSpace(res.Stderr))
	for _, w := range wants {
		if !strings.Contains(strings.ToLower(res.Stderr), strings.ToLower(w)) {
			t.Errorf("%s: the error does not mention %q: %s", what, w, strings.TrimSpace(res.Stderr))
		}
	}
}

// confineNoLeftovers checks that nothing of id is left: list is empty,
// no state directory, no cgroup directory on any hierarchy.
func confineNoLeftovers(t testing.TB, r *runtimetest.Runtime, id string) {
	t.Helper()
	if out := strings.Fields(r.Must("list", "-q")); len(out) != 0 {
		t.Errorf("list: %v, want empty", out)
	}
	if _, err := os.Lstat(filepath.Join(r.Root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory of %s left behind (lstat: %v)", id, err)
	}
	for _, d := range confineAllDirs(t, confineCgroupDir(id)) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup directory %s left behind (lstat: %v)", d, err)
		}
	}
}

// confineWaitDead waits until pid is gone or a zombie.
func confineWaitDead(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// confineProcs returns the pids in the container's cgroup (any hierarchy
// that has cgroup.procs; on v1 the pids controller's). With the systemd
// driver a cgroup that is gone is empty: systemd removes a scope's cgroup
// once its last process has exited.
func confineProcs(t testing.TB, id string) []int {
	t.Helper()
	c := confineCgroupOf(t, id)
	data, err := os.ReadFile(filepath.Join(c.dir("pids"), "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) && runtimetest.SystemdCgroup() {
		return nil
	}
	if err != nil {
		t.Fatalf("read cgroup.procs: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}
