package runtime_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// Helpers shared by the spec_*_test.go files.

// specRun runs the bundle in the foreground with args as the process and
// returns what it printed; err is non-nil when `run` exits non-zero (which
// it does when the process does).
func specRun(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	b.Spec.Process.Args = args
	b.Save(t)
	return r.Exec("run", "--bundle", b.Dir, id)
}

// specMustRun is specRun that fails the test on a non-zero exit.
func specMustRun(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, args ...string) string {
	t.Helper()
	out, stderr, err := specRun(t, r, b, id, args...)
	if err != nil {
		t.Fatalf("run %s %q: %v\nstdout: %s\nstderr: %s", id, args, err, out, stderr)
	}
	return out
}

// specCat returns the content of path as the container sees it.
func specCat(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id, path string) string {
	t.Helper()
	return specMustRun(t, r, b, id, "/bin/probe", "cat", path)
}

// probeErrno runs "probe open PATH MODE" or "probe mknod PATH" style
// commands that print "ok" or an errno name, and returns that word.
func specProbeWord(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, args ...string) string {
	t.Helper()
	out, stderr, _ := specRun(t, r, b, id, append([]string{"/bin/probe"}, args...)...)
	word := strings.TrimSpace(out)
	if word == "" {
		t.Fatalf("probe %q printed nothing; stderr: %s", args, stderr)
	}
	return word
}

// specStat stats every path in one container (a busybox shell loop around
// "probe stat") and returns the results by path; a path whose lstat failed
// is missing from the map.
func specStat(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, paths ...string) map[string]report.Stat {
	t.Helper()
	script := `for p in "$@"; do printf '%s\n' "$p"; /bin/probe stat "$p" || echo null; done`
	out, stderr, err := specRun(t, r, b, id, append([]string{"/bin/sh", "-c", script, "sh"}, paths...)...)
	if err != nil {
		t.Fatalf("stat %q in the container: %v\nstdout: %s\nstderr: %s", paths, err, out, stderr)
	}
	res := map[string]report.Stat{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		if lines[i+1] == "null" {
			continue
		}
		var st report.Stat
		if err := json.Unmarshal([]byte(lines[i+1]), &st); err != nil {
			t.Fatalf("parse probe stat of %s: %v: %s", lines[i], err, lines[i+1])
		}
		res[lines[i]] = st
	}
	return res
}

// specHostNS returns the inode of each of the test process's own
// namespaces, keyed like report.Report.Namespaces.
func specHostNS(t *testing.T) map[string]uint64 {
	t.Helper()
	return specNSInodes(t, "/proc/self/ns")
}

func specNSInodes(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, kind := range report.NamespaceKinds {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, kind), &st); err != nil {
			continue
		}
		out[kind] = st.Ino
	}
	return out
}

func specNSInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat namespace %s: %v", path, err)
	}
	return st.Ino
}

// specHasCap reports whether the test process has capability c in its
// effective set.
func specHasCap(t *testing.T, c int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mask&(1<<c) != 0
		}
	}
	return false
}

// specCreated is a container made with `create` whose stdio goes to files, so
// that the runtime returns while the init waits on its fifo.
type specCreated struct {
	id             string
	pid            int
	stdout, stderr string
}

// specCreate runs `create` with stdio redirected to files in a
// temporary directory; extra are passed as descriptors 3, 4, ... and
// createArgs are inserted before the id. It fails the test if create fails.
func specCreate(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, createArgs []string, extra ...*os.File) *specCreated {
	t.Helper()
	c, err := specTryCreate(t, r, b, id, createArgs, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func specTryCreate(t *testing.T, r *runtimetest.Runtime, b *fixture.OCIBundle, id string, createArgs []string, extra ...*os.File) (*specCreated, error) {
	t.Helper()
	b.Save(t)
	dir := t.TempDir()
	c := &specCreated{id: id, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	stdout, err := os.Create(c.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(c.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	args := append([]string{"create", "--bundle", b.Dir}, createArgs...)
	cmd := r.Command(append(args, id)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = extra
	if err := specRunCmd(cmd, 60*time.Second); err != nil {
		e, _ := os.ReadFile(c.stderr)
		return nil, &specCreateError{err: err, stderr: string(e)}
	}
	c.pid = r.State(id).Pid
	return c, nil
}

type specCreateError struct {
	err    error
	stderr string
}

func (e *specCreateError) Error() string { return "create: " + e.err.Error() + ": " + e.stderr }

// output returns what the container's process wrote so far.
func (c *specCreated) output(t *testing.T) (stdout, stderr string) {
	t.Helper()
	o, err := os.ReadFile(c.stdout)
	if err != nil {
		t.Fatal(err)
	}
	e, err := os.ReadFile(c.stderr)
	if err != nil {
		t.Fatal(err)
	}
	return string(o), string(e)
}

func specRunCmd(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return errors.New("timed out")
	}
}

// specStartWait starts a created container and waits until it stopped.
func specStartWait(t *testing.T, r *runtimetest.Runtime, c *specCreated) {
	t.Helper()
	r.Must("start", c.id)
	r.WaitStatus(c.id, "stopped", 30*time.Second)
}

// specNoLeftovers checks that a failed create left nothing behind: no
// container in `list`, no state directory, no cgroup named after id.
func specNoLeftovers(t *testing.T, r *runtimetest.Runtime, id string) {
	t.Helper()
	out := r.Must("list", "--format", "json")
	var states []runtimetest.State
	if err := json.Unmarshal([]byte(out), &states); err != nil {
		t.Fatalf("parse list output: %v: %s", err, out)
	}
	if len(states) != 0 {
		t.Errorf("list after a failed create: %s", out)
	}
	if _, err := os.Lstat(filepath.Join(r.Root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left behind (lstat: %v)", filepath.Join(r.Root, id), err)
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + id, "/sys/fs/cgroup/*/*/" + id,
		"/sys/fs/cgroup/*/*/*/" + id, "/sys/fs/cgroup/" + id} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			t.Errorf("cgroup %s left behind", p)
		}
	}
}

// specID makes a container id that is unique across test runs on the
// machine: tests in other packages may share the cgroup hierarchy.
func specID(t *testing.T, name string) string {
	t.Helper()
	return name + "-" + strconv.Itoa(os.Getpid())
}

// fileSHA returns the bytes of a file, for before/after comparisons.
func specReadFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// mountinfoHas reports whether the test process's mount table has a mount
// at path.
func specHostMounts(t *testing.T) map[string]int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			out[f[4]]++
		}
	}
	return out
}

// specParseReport decodes a probe report printed by a container started with
// create and start.
func specParseReport(t *testing.T, stdout, stderr string) *report.Report {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("parse probe report: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	return &rep
}
