package runtimetest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, mounts and cgroups")
	}
}

var binOnce = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("BERTH_RUNTIME"); p != "" {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "berth-runtime-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "berth-runtime")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "osusergo,netgo",
		"-ldflags", "-s -w -linkmode external -extldflags -static", "-o", bin, "./cmd/berth-runtime")
	cmd.Dir = mod
	// As the Makefile builds it (RUNTIME_GOEXPERIMENT).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOEXPERIMENT=jsonv2")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build berth-runtime: %v\n%s", err, out)
	}
	return bin, nil
})

// Binary returns the path of the runtime under test.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := binOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SystemdCgroupEnv names the environment variable that, set to 1, runs every
// Runtime with --systemd-cgroup: containers get transient systemd units
// instead of cgroupfs directories. The root suites run once each way where
// systemd is PID 1 (cmd/berth-vm does).
const SystemdCgroupEnv = "BERTH_TEST_SYSTEMD_CGROUP"

// SystemdCgroup reports whether the tests drive the systemd cgroup driver.
func SystemdCgroup() bool { return os.Getenv(SystemdCgroupEnv) == "1" }

// CgroupsPath returns a linux.cgroupsPath that puts container id in a
// group of the tests' own, named group (letters, digits and dashes): the
// cgroupfs path "/group/id", or with the systemd driver the scope
// "berth-id.scope" in the slice named after group ("group.slice:berth:id",
// with dashes made underscores, since a dash in a slice name nests).
func CgroupsPath(group, id string) string {
	if SystemdCgroup() {
		return strings.ReplaceAll(group, "-", "_") + ".slice:berth:" + id
	}
	return "/" + group + "/" + id
}

// CgroupDir returns the cgroup, from the root of each hierarchy, where a
// container with cgroupsPath p lands: p itself for an absolute cgroupfs
// path, "/slice/prefix-name.scope" for a systemd path of CgroupsPath's
// form. Other systemd paths are not supported.
func CgroupDir(p string) string {
	slice, rest, ok := strings.Cut(p, ":")
	if !ok {
		return p
	}
	prefix, name, _ := strings.Cut(rest, ":")
	if prefix != "" {
		name = prefix + "-" + name
	}
	return "/" + slice + "/" + name + ".scope"
}

// Runtime is the runtime binary with a private state root.
type Runtime struct {
	t    testing.TB
	Bin  string
	Root string
	// SystemdCgroup adds --systemd-cgroup to every command (from
	// SystemdCgroupEnv).
	SystemdCgroup bool
}

// New returns a runtime for t; containers left at the end are deleted with
// --force, and the test fails if that does not work.
func New(t testing.TB) *Runtime {
	t.Helper()
	RequireRoot(t)
	r := &Runtime{t: t, Bin: Binary(t), Root: t.TempDir(), SystemdCgroup: SystemdCgroup()}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(r.Root)
		for _, e := range entries {
			if _, stderr, err := r.Exec("delete", "--force", e.Name()); err != nil {
				t.Errorf("clean-up: delete --force %s: %v: %s", e.Name(), err, stderr)
			}
		}
	})
	return r
}

// Command builds an *exec.Cmd for the runtime with --root set, and
// --systemd-cgroup when the Runtime has SystemdCgroup.
func (r *Runtime) Command(args ...string) *exec.Cmd {
	global := []string{"--root", r.Root}
	if r.SystemdCgroup {
		global = append(global, "--systemd-cgroup")
	}
	return exec.Command(r.Bin, append(global, args...)...)
}

// Exec runs the runtime and returns its output; err is non-nil on a
// non-zero exit. Output goes through files, not pipes: a container that
// create or run -d leaves behind inherits them, and a pipe would keep the
// caller waiting for the container's end.
func (r *Runtime) Exec(args ...string) (stdout, stderr string, err error) {
	cmd := r.Command(args...)
	o, oerr := os.CreateTemp("", "berth-stdout-")
	e, eerr := os.CreateTemp("", "berth-stderr-")
	if oerr != nil || eerr != nil {
		return "", "", fmt.Errorf("output files: %v %v", oerr, eerr)
	}
	defer os.Remove(o.Name())
	defer os.Remove(e.Name())
	defer o.Close()
	defer e.Close()
	cmd.Stdout, cmd.Stderr = o, e
	err = RunTimeout(cmd, 60*time.Second)
	ob, _ := os.ReadFile(o.Name())
	eb, _ := os.ReadFile(e.Name())
	return string(ob), string(eb), err
}

// Must runs the runtime and fails the test on error.
func (r *Runtime) Must(args ...string) string {
	r.t.Helper()
	out, stderr, err := r.Exec(args...)
	if err != nil {
		r.t.Fatalf("berth-runtime %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// RunTimeout starts cmd and waits for it, killing it after d.
func RunTimeout(cmd *exec.Cmd, d time.Duration) error {
	// Bounds the wait for output copying after the process is gone.
	cmd.WaitDelay = 5 * time.Second
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
		return fmt.Errorf("timed out after %s", d)
	}
}

// State is the subset of `state` output tests look at.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Annotations map[string]string `json:"annotations"`
	Created     time.Time         `json:"created"`
}

// State returns the container's state.
func (r *Runtime) State(id string) State {
	r.t.Helper()
	var s State
	out := r.Must("state", id)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		r.t.Fatalf("parse state: %v: %s", err, out)
	}
	return s
}

// RunProbe runs the bundle in the foreground (its args are set to the
// probe's report) and returns what the probe saw.
func (r *Runtime) RunProbe(b *fixture.OCIBundle, id string) *report.Report {
	r.t.Helper()
	b.Spec.Process.Args = []string{"/bin/probe", "report"}
	b.Save(r.t)
	out, stderr, err := r.Exec("run", "--bundle", b.Dir, id)
	if err != nil {
		r.t.Fatalf("run %s: %v\nstdout: %s\nstderr: %s", id, err, out, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		r.t.Fatalf("parse probe report: %v\n%s\nstderr: %s", err, out, stderr)
	}
	return &rep
}

// WaitStatus polls until the container reaches status or the timeout.
func (r *Runtime) WaitStatus(id, status string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		out, _, err := r.Exec("state", id)
		if err == nil {
			var s State
			if json.Unmarshal([]byte(out), &s) == nil {
				last = s.Status
				if s.Status == status {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("container %s: status %q after %s, want %q", id, last, timeout, status)
}
