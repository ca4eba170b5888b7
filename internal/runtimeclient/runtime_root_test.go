package runtimeclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// runtimes returns the runtimes under test: berth-runtime always, runc and
// crun when installed.
func runtimes(t *testing.T) map[string]string {
	t.Helper()
	runtimetest.RequireRoot(t)
	rts := map[string]string{"berth-runtime": runtimetest.Binary(t)}
	for name, path := range map[string]string{"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"} {
		if _, err := os.Stat(path); err == nil {
			rts[name] = path
		}
	}
	// crun refuses hybrid hosts whose cgroup2 mount has controllers
	// ("cgroups in hybrid mode not supported"), as these machines are.
	if l, err := cgroups.Detect(); err == nil && l.Mode == cgroups.Hybrid {
		if u, ok := l.Unified(); ok && len(u.Controllers) > 0 {
			delete(rts, "crun")
		}
	}
	return rts
}

// forEachRuntime runs fn as a parallel subtest per runtime, with a fresh
// --root whose containers are deleted at the end.
func forEachRuntime(t *testing.T, fn func(t *testing.T, rt *Runtime)) {
	t.Helper()
	for name, path := range runtimes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rt := &Runtime{Path: path, Root: t.TempDir()}
			t.Cleanup(func() {
				entries, _ := os.ReadDir(rt.Root)
				for _, e := range entries {
					if err := rt.Delete(context.Background(), e.Name(), true); err != nil && !errors.Is(err, ErrNotExist) {
						t.Errorf("clean-up: %v", err)
					}
				}
			})
			fn(t, rt)
		})
	}
}

// bundleFor makes a bundle rt accepts.
func bundleFor(t *testing.T, rt *Runtime, opts ...fixture.Option) *fixture.OCIBundle {
	t.Helper()
	if filepath.Base(rt.Path) == "crun" {
		// crun 1.8 refuses runtime-spec versions newer than it knows.
		opts = append(opts, fixture.WithSpec(func(s *specs.Spec) { s.Version = "1.0.2" }))
	}
	return fixture.Bundle(t, opts...)
}

var idSeq atomic.Int64

func newID() string {
	return fmt.Sprintf("rtc-%d-%d", os.Getpid(), idSeq.Add(1))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createSleeper creates (not starts) a container running "probe sleep 1000"
// with its stdout on a pipe, and returns the pipe's read end and the init's
// pid from the pid file.
func createWith(t *testing.T, rt *Runtime, id string, args ...string) (*os.File, int) {
	t.Helper()
	b := bundleFor(t, rt, fixture.WithArgs(args...))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	pidFile := filepath.Join(b.Dir, "init.pid")
	err = rt.Create(ctxT(t), id, CreateOptions{Bundle: b.Dir, PidFile: pidFile, Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	return pr, pid
}

func TestLifecycle(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *Runtime) {
		ctx := ctxT(t)
		id := newID()
		out, pid := createWith(t, rt, id, "/bin/sh", "-c", "echo hello; exec /bin/probe sleep 1000")
		st, err := rt.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != StatusCreated || st.Pid != pid || st.ID != id {
			t.Errorf("state after create: %+v, want created with pid %d", st, pid)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "hello\n" {
			t.Fatalf("container stdout %q, %v", line, err)
		}
		if st, err = rt.State(ctx, id); err != nil || st.Status != StatusRunning {
			t.Fatalf("state after start: %+v, %v", st, err)
		}
		pids, err := rt.Ps(ctx, id)
		if err != nil || !slices.Contains(pids, pid) {
			t.Errorf("ps: %v, %v; want the init %d among them", pids, err, pid)
		}
		list, err := rt.List(ctx)
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Errorf("list: %+v, %v", list, err)
		}

		if err := rt.Pause(ctx, id); err != nil {
			t.Fatal(err)
		}
		if st, _ = rt.State(ctx, id); st.Status != StatusPaused {
			t.Errorf("state after pause: %s", st.Status)
		}
		if err := rt.Resume(ctx, id); err != nil {
			t.Fatal(err)
		}
		if st, _ = rt.State(ctx, id); st.Status != StatusRunning {
			t.Errorf("state after resume: %s", st.Status)
		}

		if err := rt.Kill(ctx, id, syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, rt, id, StatusStopped)
		if err := rt.Delete(ctx, id, false); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(rt.Root, id)); !os.IsNotExist(err) {
			t.Errorf("state directory left after delete: %v", err)
		}
		if list, err := rt.List(ctx); err != nil || len(list) != 0 {
			t.Errorf("list after delete: %+v, %v", list, err)
		}
	})
}

func waitStatus(t *testing.T, rt *Runtime, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := rt.State(context.Background(), id)
		if err == nil && st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: state %+v, %v; want %s", id, st, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExecAndResources(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *Runtime) {
		ctx := ctxT(t)
		id := newID()
		_, _ = createWith(t, rt, id, "/bin/probe", "sleep", "1000")
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		proc := func(args ...string) *specs.Process {
			return &specs.Process{Args: args, Cwd: "/", Env: []string{fixture.DefaultPath}}
		}

		// In the foreground: output on our pipe, the status as the error's.
		pr, pw, _ := os.Pipe()
		err := rt.Exec(ctx, id, ExecOptions{Process: proc("/bin/sh", "-c", "echo from-exec; exit 7"), Stdout: pw})
		pw.Close()
		var rerr *Error
		if !errors.As(err, &rerr) || rerr.Status != 7 {
			t.Errorf("exec exiting 7: %v, want an *Error with status 7", err)
		}
		if line, _ := bufio.NewReader(pr).ReadString('\n'); line != "from-exec\n" {
			t.Errorf("exec stdout %q", line)
		}
		pr.Close()

		// Detached: the pid is in the pid file and the process runs.
		pidFile := filepath.Join(t.TempDir(), "exec.pid")
		if err := rt.Exec(ctx, id, ExecOptions{Process: proc("/bin/probe", "sleep", "1000"), Detach: true, PidFile: pidFile}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(pidFile)
		epid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if epid <= 0 || syscall.Kill(epid, 0) != nil {
			t.Errorf("detached exec: pid file %q names no live process", data)
		}
		pids, _ := rt.Ps(ctx, id)
		if !slices.Contains(pids, epid) {
			t.Errorf("ps %v lacks the exec'd process %d", pids, epid)
		}

		// Update, seen through the statistics.
		limit := int64(256 << 20)
		if err := rt.Update(ctx, id, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
			t.Fatal(err)
		}
		stats, err := rt.Stats(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Memory.Usage.Limit != uint64(limit) || stats.Memory.Usage.Usage == 0 {
			t.Errorf("stats after update: memory %+v, want limit %d and some usage", stats.Memory.Usage, limit)
		}
		if stats.Pids.Current < 2 {
			t.Errorf("stats: %d pids, want the init and the exec", stats.Pids.Current)
		}

		// Streaming events: a statistics sample, then fn's error ends it.
		stop := errors.New("enough")
		n := 0
		err = rt.Events(ctx, id, 100*time.Millisecond, func(ev *Event) error {
			if ev.Type == "stats" && ev.Data != nil {
				n++
			}
			if n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("events: %v after %d samples", err, n)
		}
		// And a cancelled context ends it without error.
		ectx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := rt.Events(ectx, id, time.Second, func(*Event) error { return nil }); err != nil {
			t.Errorf("events ended by its context: %v", err)
		}
	})
}

func TestErrors(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *Runtime) {
		ctx := ctxT(t)
		_, err := rt.State(ctx, "no-such-container")
		var rerr *Error
		if !errors.Is(err, ErrNotExist) || !errors.As(err, &rerr) || rerr.Msg == "" || rerr.Op != "state" {
			t.Errorf("state of a missing container: %v (%#v), want ErrNotExist with the runtime's message", err, err)
		}
		if err := rt.Kill(ctx, "no-such-container", syscall.SIGTERM, false); !errors.Is(err, ErrNotExist) {
			t.Errorf("kill of a missing container: %v, want ErrNotExist", err)
		}
		if err := rt.Delete(ctx, "no-such-container", false); !errors.Is(err, ErrNotExist) {
			t.Errorf("delete of a missing container: %v, want ErrNotExist", err)
		}
		// With --force, every runtime takes it as done.
		if err := rt.Delete(ctx, "no-such-container", true); err != nil {
			t.Errorf("delete --force of a missing container: %v", err)
		}

		id := newID()
		createWith(t, rt, id, "/bin/true")
		b := bundleFor(t, rt)
		err = rt.Create(ctx, id, CreateOptions{Bundle: b.Dir})
		if !errors.Is(err, ErrExist) {
			t.Errorf("create of an existing id: %v, want ErrExist", err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, rt, id, StatusStopped)
		if err := rt.Kill(ctx, id, syscall.SIGTERM, false); !errors.Is(err, ErrNotRunning) {
			t.Errorf("kill of a stopped container: %v, want ErrNotRunning", err)
		}

		// A broken bundle: the message is the runtime's, and it is not
		// taken for a missing container.
		bad := t.TempDir()
		err = rt.Create(ctx, newID(), CreateOptions{Bundle: bad})
		if err == nil || errors.Is(err, ErrNotExist) || errors.Is(err, ErrExist) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("create from an empty directory: %v, want the runtime's complaint about config.json", err)
		}

		// Cancelled before it starts: nothing runs.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := rt.Start(cctx, id); !errors.Is(err, context.Canceled) {
			t.Errorf("start with a cancelled context: %v", err)
		}

		v, err := rt.Version(ctx)
		if err != nil || !strings.Contains(v, "version") {
			t.Errorf("version: %q, %v", v, err)
		}
	})
}
