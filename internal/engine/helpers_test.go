package engine_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-project/berth/internal/errdefs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// busybox is the name the fixture image loads as.
const busybox = "berth/busybox"

// shimOnce is $BERTH_SHIM (make test and the test guest set it), else a
// berth-shim built for the test binary, removed when the tests end.
var shimOnce = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("BERTH_SHIM"); p != "" {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "engine-test-shim-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "berth-shim")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/berth-shim")
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build berth-shim: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := shimOnce(); err == nil && os.Getenv("BERTH_SHIM") == "" {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// runtimeBinary is $BERTH_RUNTIME, else the repository's
// bin/berth-runtime (make build), else one built for the test binary.
func runtimeBinary(t *testing.T) string {
	if os.Getenv("BERTH_RUNTIME") == "" {
		if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
			bin := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "bin", "berth-runtime")
			if _, err := os.Stat(bin); err == nil {
				return bin
			}
		}
	}
	return runtimetest.Binary(t)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: snapshots, mounts, namespaces and cgroups")
	}
}

// env is an engine on roots of its own on tmpfs, with the busybox image
// loaded; every container is removed and the roots are deleted at the
// end.
type env struct {
	t      *testing.T
	cfg    engine.Config
	e      *engine.Engine
	images *image.Service
	root   string

	mu     sync.Mutex
	events []events.Message
}

func newEnv(t *testing.T, edit ...func(*engine.Config)) *env {
	t.Helper()
	needRoot(t)
	// Each env has roots of its own: the tests run side by side (most of
	// a container's start is waiting for the runtime).
	t.Parallel()
	// A missing shim fails the tests that start containers (start
	// says why), not those that do not.
	shim, err := shimOnce()
	if err != nil {
		t.Logf("no berth-shim: %v", err)
		shim = "/nonexistent/berth-shim"
	}
	rt := runtimeBinary(t)
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		base = ""
	}
	root, err := os.MkdirTemp(base, "berth-engine-test-")
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, root: root}
	svc, err := image.New(image.Config{Root: filepath.Join(root, "data", "image"), InUse: func(id digest.Digest) bool { return v.e != nil && v.e.ImageInUse(id) }})
	if err != nil {
		os.RemoveAll(root)
		t.Fatal(err)
	}
	v.images = svc
	t.Cleanup(v.cleanup)
	f, err := os.Open(fixture.Image(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := svc.Load(ctx(t), f, nil); err != nil {
		t.Fatal(err)
	}
	v.cfg = engine.Config{
		DataRoot:   filepath.Join(root, "data"),
		ExecRoot:   filepath.Join(root, "run"),
		Images:     svc,
		Runtime:    rt,
		ShimBinary: shim,
		Events: func(m events.Message) {
			v.mu.Lock()
			v.events = append(v.events, m)
			v.mu.Unlock()
		},
		Log: func(format string, args ...any) { t.Logf("engine: "+format, args...) },
	}
	for _, ed := range edit {
		ed(&v.cfg)
	}
	if v.e, err = engine.New(v.cfg); err != nil {
		t.Fatal(err)
	}
	return v
}

// reopen closes the engine without stopping its containers and opens a
// new one on the same roots, as a berthd restart does.
func (v *env) reopen() {
	v.t.Helper()
	if err := v.e.Close(); err != nil {
		v.t.Fatal(err)
	}
	e, err := engine.New(v.cfg)
	if err != nil {
		v.e = nil
		v.t.Fatal(err)
	}
	v.e = e
}

func (v *env) cleanup() {
	t := v.t
	if v.e != nil {
		cs, err := v.e.List(context.Background(), engine.ListOptions{All: true})
		if err != nil {
			t.Errorf("cleanup: list: %v", err)
		}
		for _, c := range cs {
			if err := v.e.Remove(context.Background(), c.ID, engine.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("cleanup: remove %s: %v", c.ID, err)
			}
		}
		v.e.Close()
	}
	if v.images != nil {
		v.images.Close()
	}
	// Anything still mounted below the roots (a test that failed half
	// way) goes before the directories.
	unmountBelow(t, v.root)
	if err := os.RemoveAll(v.root); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// mountsBelow lists the mount points under dir, deepest first.
func mountsBelow(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append([]string{f[4]}, out...)
		}
	}
	return out
}

func unmountBelow(t *testing.T, dir string) {
	for _, m := range mountsBelow(dir) {
		t.Errorf("cleanup: %s still mounted", m)
		snapshot.Unmount(m)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// create makes a container of busybox running cmd.
func (v *env) create(name string, cfg *container.Config, hc *container.HostConfig) string {
	v.t.Helper()
	if cfg == nil {
		cfg = &container.Config{}
	}
	if cfg.Image == "" {
		cfg.Image = busybox
	}
	id, _, err := v.e.Create(ctx(v.t), name, cfg, hc, nil)
	if err != nil {
		v.t.Fatalf("create: %v", err)
	}
	return id
}

func (v *env) inspect(ref string) *container.InspectResponse {
	v.t.Helper()
	r, err := v.e.Inspect(ctx(v.t), ref, false)
	if err != nil {
		v.t.Fatalf("inspect %s: %v", ref, err)
	}
	return r
}

// wait waits for the container to stop and returns its exit code.
func (v *env) wait(ref string, cond container.WaitCondition) int {
	v.t.Helper()
	wctx, cancel := context.WithTimeout(ctx(v.t), 30*time.Second)
	defer cancel()
	ch, err := v.e.Wait(wctx, ref, cond)
	if err != nil {
		v.t.Fatalf("wait %s: %v", ref, err)
	}
	r, ok := <-ch
	if !ok {
		v.t.Fatalf("wait %s: no result within 30 s", ref)
	}
	return int(r.StatusCode)
}

// eventsOf returns the actions of the events recorded for id.
func (v *env) eventsOf(id string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, m := range v.events {
		if m.Actor.ID == id {
			out = append(out, string(m.Action))
		}
	}
	return out
}

// processAlive tells whether pid exists.
func processAlive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) == nil
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
