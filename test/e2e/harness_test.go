package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root: berthd runs as root")
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// buildOnce finds the binaries: BERTH_BIN_DIR (make test sets it), or
// else bin/ after a `make build`, which is incremental. berthd starts
// the runtime, the shim, the init and the CNI plugins from beside
// itself, so building berthd and berth alone would test them against
// whatever else is in PATH, or fail to start.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir := os.Getenv("BERTH_BIN_DIR")
	if dir == "" {
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("make build: %v\n%s", err, out)
		}
		dir = filepath.Join(moduleRoot(), "bin")
	}
	for _, b := range []string{"berthd", "berth", "berth-runtime", "berth-shim"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("berth binaries in %s: %w", dir, err)
		}
	}
	return dir, nil
})

func moduleRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// binDir returns the directory holding berthd and berth.
func binDir(t *testing.T) string {
	t.Helper()
	dir, err := buildOnce()
	if err != nil {
		t.Fatalf("berth binaries: %v", err)
	}
	return dir
}

// scratchDir is a temporary directory on tmpfs when there is one: the
// root disk is slow at creating files.
func scratchDir(t *testing.T) string {
	t.Helper()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// daemon is a running berthd.
type daemon struct {
	bin      string
	Host     string // unix://...
	Socket   string
	DataRoot string
	ExecRoot string
	log      *bytes.Buffer
	cmd      *exec.Cmd
	done     chan error
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

// startTimeout bounds berthd's start: a second here, tens of seconds in
// a guest under software emulation (make test-vm), where the binary is
// read over 9p page by page.
const startTimeout = 90 * time.Second

// startDaemon runs berthd with its roots in a scratch directory and stops
// it (SIGTERM, then a bounded wait) when the test ends. Its default
// bridge has a name of its own (never the host's berth0, which a berthd
// of the machine's may own), and what its networks made on the host,
// which outlives berthd as docker0 outlives dockerd, goes once it has
// stopped (removeHostSides).
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	requireRoot(t)
	bin := binDir(t)
	dir := scratchDir(t)
	d := &daemon{bin: bin, DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "run"), log: &bytes.Buffer{}}
	d.Socket = filepath.Join(d.ExecRoot, "berthd.sock")
	d.Host = "unix://" + d.Socket
	if !slices.Contains(extra, "--bridge") {
		extra = append(extra, "--bridge", uniqueBridge())
	}
	// Registered before the stop below, so it runs after it.
	t.Cleanup(func() { removeHostSides(t, d.DataRoot) })
	args := append([]string{"--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "-H", d.Host, "--log-level", "debug"}, extra...)
	d.cmd = exec.Command(filepath.Join(bin, "berthd"), args...)
	var logBuf syncBuffer
	d.cmd.Stdout, d.cmd.Stderr = &logBuf, &logBuf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			t.Error("berthd did not stop within 20s of SIGTERM")
		}
		logBuf.mu.Lock()
		defer logBuf.mu.Unlock()
		if t.Failed() {
			t.Logf("berthd log:\n%s", logBuf.String())
		}
	})
	began := time.Now()
	deadline := began.Add(startTimeout)
	for {
		if resp, err := d.request(t, "GET", "/_ping", nil); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if took := time.Since(began); took > 5*time.Second {
					t.Logf("berthd took %s to answer", took.Round(time.Millisecond))
				}
				return d
			}
		}
		select {
		case err := <-d.done:
			d.done <- err // for the clean-up, which waits for it too
			logBuf.mu.Lock()
			log := logBuf.String()
			logBuf.mu.Unlock() // the clean-up takes it too
			t.Fatalf("berthd exited while starting: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("berthd did not answer /_ping within " + startTimeout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// request sends one HTTP request to the daemon's socket; a body is
// JSON, as docker's clients send it.
func (d *daemon) request(t *testing.T, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://berthd"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return d.client(t).Do(req)
}

// client is an HTTP client of the daemon's socket.
func (d *daemon) client(*testing.T) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket)
		}}}
}

// result is a finished command.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run runs a command with a timeout and returns what it printed.
func run(t *testing.T, env []string, stdin io.Reader, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// berth runs the berth CLI against the daemon.
func (d *daemon) berth(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, nil, filepath.Join(d.bin, "berth"), append([]string{"-H", d.Host}, args...)...)
}

// mustBerth runs berth and fails the test unless it succeeds.
func (d *daemon) mustBerth(t *testing.T, args ...string) string {
	t.Helper()
	r := d.berth(t, args...)
	if r.Code != 0 {
		t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// dockerCLI returns the docker CLI binary, skipping the test without one.
func dockerCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/local/bin/docker"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	return p
}

// docker runs the docker CLI against the daemon, with a config directory
// of its own so the user's contexts and credentials stay out of it.
func (d *daemon) docker(t *testing.T, args ...string) result {
	t.Helper()
	bin := dockerCLI(t)
	cfg := filepath.Join(d.ExecRoot, "docker-config")
	os.MkdirAll(cfg, 0o700)
	return run(t, []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + cfg, "DOCKER_API_VERSION="}, nil, bin, args...)
}

func (d *daemon) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	r := d.docker(t, args...)
	if r.Code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: missing %q in:\n%s", what, w, got)
		}
	}
}
