package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/runtimeclient"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// helperEnv, when set, makes the test binary a spawner: it spawns a shim
// from the JSON SpawnOptions in the variable, prints "spawned", and waits
// to be killed (TestShimSurvivesStarterDeath).
const helperEnv = "BERTH_SHIM_TEST_SPAWN"

// helperIgnoreEnv makes the spawner ignore a few signals first.
const helperIgnoreEnv = "BERTH_SHIM_TEST_IGNORE"

func TestMain(m *testing.M) {
	if opts := os.Getenv(helperEnv); opts != "" {
		var o SpawnOptions
		if err := json.Unmarshal([]byte(opts), &o); err != nil {
			fmt.Println("bad options:", err)
			os.Exit(2)
		}
		if os.Getenv(helperIgnoreEnv) != "" {
			// A careless engine: the shim must not pass these on.
			signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGPIPE)
		}
		if _, err := Spawn(context.Background(), o); err != nil {
			fmt.Println("spawn:", err)
			os.Exit(1)
		}
		fmt.Println("spawned")
		select {}
	}
	code := m.Run()
	if shimBuildDir != "" {
		os.RemoveAll(shimBuildDir)
	}
	os.Exit(code)
}

// shimBuildDir is where shimOnce built berth-shim, removed after the tests.
var shimBuildDir string

var shimOnce = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("BERTH_SHIM"); p != "" {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "berth-shim-bin-")
	if err != nil {
		return "", err
	}
	shimBuildDir = dir
	bin := filepath.Join(dir, "berth-shim")
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	// With cgo, as the Makefile builds it: the in-process runtime needs it.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "osusergo,netgo", "-ldflags", "-s -w", "-o", bin, "./cmd/berth-shim")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build berth-shim: %v\n%s", err, out)
	}
	return bin, nil
})

// shimBinary returns berth-shim: $BERTH_SHIM, or built once per test
// binary.
func shimBinary(t testing.TB) string {
	t.Helper()
	p, err := shimOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var idSeq atomic.Int64

// rig is one container under a shim, with everything a test checks.
type rig struct {
	t       *testing.T
	id      string
	bundle  *fixture.OCIBundle
	rt      *runtimeclient.Runtime
	logPath string
	opts    SpawnOptions
	c       *Client
}

type rigOption func(*rig)

func withTty(r *rig)   { r.opts.Tty = true; r.bundle.Spec.Process.Terminal = true }
func withStdin(r *rig) { r.opts.Stdin = true }
func withLogConfig(cfg logs.Config) rigOption {
	return func(r *rig) { r.opts.LogConfig = &cfg }
}
func withRuntime(path string) rigOption {
	return func(r *rig) { r.opts.Runtime = path; r.rt.Path = path }
}
func withSpec(edit func(*specs.Spec)) rigOption {
	return func(r *rig) { edit(r.bundle.Spec) }
}

// newRig prepares a bundle running args (not yet spawned).
func newRig(t *testing.T, args []string, opts ...rigOption) *rig {
	t.Helper()
	runtimetest.RequireRoot(t)
	r := &rig{t: t, id: fmt.Sprintf("shim-%d-%d", os.Getpid(), idSeq.Add(1))}
	r.bundle = fixture.Bundle(t, fixture.WithArgs(args...))
	r.rt = &runtimeclient.Runtime{Path: runtimetest.Binary(t), Root: t.TempDir()}
	r.logPath = filepath.Join(t.TempDir(), r.id+"-json.log")
	r.opts = SpawnOptions{Binary: shimBinary(t), ID: r.id, Bundle: r.bundle.Dir, Runtime: r.rt.Path,
		RuntimeRoot: r.rt.Root, Log: r.logPath}
	for _, o := range opts {
		o(r)
	}
	r.bundle.Save(t)
	t.Cleanup(r.cleanup)
	return r
}

// spawn starts the shim and returns its client.
func (r *rig) spawn() *Client {
	r.t.Helper()
	c, err := Spawn(ctxT(r.t), r.opts)
	if err != nil {
		r.t.Fatalf("Spawn: %v", err)
	}
	r.c = c
	return c
}

// cleanup deletes whatever a failed test left: the container through the
// shim when it still serves, else through the runtime; and the shim.
func (r *rig) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid := r.shimPid()
	if c, err := Dial(r.bundle.Dir); err == nil {
		if err := c.Delete(ctx); err != nil {
			r.t.Errorf("clean-up: delete through the shim: %v", err)
		}
	}
	if _, err := os.Stat(r.rt.Path); err != nil {
		return // a test of a missing runtime
	}
	if err := r.rt.Delete(ctx, r.id, true); err != nil && !errors.Is(err, runtimeclient.ErrNotExist) {
		r.t.Errorf("clean-up: runtime delete: %v", err)
	}
	if pid > 0 && waitGone(pid, 5*time.Second) != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		r.t.Errorf("clean-up: shim %d still running after delete", pid)
	}
}

// shimPid reads shim.pid; 0 when absent.
func (r *rig) shimPid() int {
	data, err := os.ReadFile(filepath.Join(r.bundle.Dir, PidFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// ctxT bounds a test's calls: against hangs, loose enough for a whole
// test's steps in a guest under software emulation (make test-vm), ten
// times slower than the host.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitGone waits until pid is no longer a live process (a zombie counts
// as gone: nobody can signal it).
func waitGone(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return nil
		}
		// The state is the field after the parenthesised command.
		if i := bytes.LastIndexByte(data, ')'); i > 0 && len(data) > i+2 && data[i+2] == 'Z' {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("process %d still alive after %s", pid, d)
}

// mustWait waits for the init's exit and checks its code.
func (r *rig) mustWait(want int) *Exit {
	r.t.Helper()
	e, err := r.c.Wait(ctxT(r.t))
	if err != nil {
		r.t.Fatalf("Wait: %v", err)
	}
	if e.Code != want {
		r.t.Errorf("exit code %d, want %d; log:\n%s", e.Code, want, r.readLog())
	}
	return e
}

func (r *rig) readLog() string {
	data, _ := os.ReadFile(r.logPath)
	return string(data)
}

// logMessages returns the log's messages.
func (r *rig) logMessages() []*logs.Message {
	r.t.Helper()
	var out []*logs.Message
	err := logs.Read(context.Background(), r.logPath, logs.ReadConfig{Tail: -1}, func(m *logs.Message) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until b contains s.
func (b *syncBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never contained %q", b.String(), s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procCgroupDirs returns the cgroup directories of pid, as absolute paths
// under the host's cgroup mounts.
func procCgroupDirs(t *testing.T, pid int) []string {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		var mnt string
		switch {
		case parts[1] == "":
			mnt = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mnt); err != nil {
				mnt = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(parts[1], "name="):
			mnt = "/sys/fs/cgroup/" + strings.TrimPrefix(parts[1], "name=")
		default:
			mnt = "/sys/fs/cgroup/" + parts[1]
		}
		if _, err := os.Stat(mnt); err == nil {
			dirs = append(dirs, filepath.Join(mnt, parts[2]))
		}
	}
	return dirs
}

// mountsMentioning returns the host's mountinfo lines that contain s.
func mountsMentioning(t *testing.T, s string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// readAllFrom returns what r yields until EOF (for pipes in tests).
func readAllFrom(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// spawnViaHelper spawns r's shim from another process (this test binary
// in helper mode) and returns that process, still running; extraEnv is
// added to its environment.
func (r *rig) spawnViaHelper(extraEnv ...string) *exec.Cmd {
	r.t.Helper()
	data, _ := json.Marshal(r.opts)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(append(os.Environ(), helperEnv+"="+string(data)), extraEnv...)
	out, err := helper.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		helper.Process.Kill()
		helper.Wait()
	})
	line := make([]byte, 64)
	n, _ := io.ReadAtLeast(out, line, len("spawned"))
	if !strings.HasPrefix(string(line[:n]), "spawned") {
		r.t.Fatalf("helper: %q", line[:n])
	}
	return helper
}
