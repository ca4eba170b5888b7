package inprocess

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"github.com/berth-project/berth/internal/runtimeclient"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// parentOf reads the parent pid of pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...: comm may hold spaces, so from the last ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// The lifecycle run in this process leaves the state berth-runtime's
// binary reads: created, running, stopped, then gone; the init is this
// process's own child from the start (no runtime process in between), and
// its output reaches the descriptors it was given.
func TestLifecycle(t *testing.T) {
	rt := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	r := &Runtime{CLI: &runtimeclient.Runtime{Path: rt.Bin, Root: rt.Root, SystemdCgroup: rt.SystemdCgroup}}
	ctx := ctxT(t)
	id := fmt.Sprintf("inproc-%d", os.Getpid())
	pidFile := filepath.Join(t.TempDir(), "init.pid")

	if err := r.Create(ctx, id, runtimeclient.CreateOptions{Bundle: b.Dir, PidFile: pidFile}); err != nil {
		t.Fatal(err)
	}
	st := rt.State(id)
	if st.Status != "created" {
		t.Fatalf("after create: status %q", st.Status)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (%v), state pid %d", data, err, st.Pid)
	}
	if ppid := parentOf(t, st.Pid); ppid != os.Getpid() {
		t.Fatalf("the init's parent is %d, want this process (%d)", ppid, os.Getpid())
	}
	err = r.Create(ctx, id, runtimeclient.CreateOptions{Bundle: b.Dir})
	if !errors.Is(err, runtimeclient.ErrExist) || !strings.Contains(err.Error(), "runtime create "+id+": ") {
		t.Fatalf("second create: %v, want ErrExist worded as the client words it", err)
	}

	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := rt.State(id); st.Status != "running" {
		t.Fatalf("after start: status %q", st.Status)
	}
	if err := r.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := rt.State(id); st.Status != "paused" {
		t.Fatalf("after pause: status %q", st.Status)
	}
	if err := r.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, id, false); err == nil || errors.Is(err, runtimeclient.ErrNotExist) {
		t.Fatalf("delete of a running container without force: %v", err)
	}
	if err := r.Kill(ctx, id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(st.Pid, &ws, 0, nil); err != nil || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("wait for the init: %v, status %v", err, ws)
	}
	if err := r.Kill(ctx, id, syscall.SIGTERM, false); !errors.Is(err, runtimeclient.ErrNotRunning) {
		t.Fatalf("kill of a stopped container: %v, want ErrNotRunning", err)
	}
	if err := r.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rt.Root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state left after delete: %v", err)
	}
	if err := r.Start(ctx, id); !errors.Is(err, runtimeclient.ErrNotExist) {
		t.Fatalf("start after delete: %v, want ErrNotExist", err)
	}
}

// The init's stdio is what the caller gives, and /dev/null where it gives
// nothing: never the caller's own descriptors.
func TestCreateStdio(t *testing.T) {
	rt := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/sh", "-c", "echo out; echo err >&2; ls -l /proc/self/fd/0"))
	r := &Runtime{CLI: &runtimeclient.Runtime{Path: rt.Bin, Root: rt.Root, SystemdCgroup: rt.SystemdCgroup}}
	ctx := ctxT(t)
	id := fmt.Sprintf("inproc-io-%d", os.Getpid())
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	if err := r.Create(ctx, id, runtimeclient.CreateOptions{Bundle: b.Dir, Stdout: outW}); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	pid := rt.State(id).Pid
	// Without the handle kept from create, start loads the state afresh.
	r.Forget(id)
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(outR)
	if err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !strings.HasPrefix(string(out), "out\n") || strings.Contains(string(out), "err") || !strings.Contains(string(out), "/dev/null") {
		t.Fatalf("container stdout %q: want only its own output, stdin on /dev/null", out)
	}
	if err := r.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
}

// A container that cannot be set up fails create with the init's step and
// message, and leaves nothing under the root.
func TestCreateFailure(t *testing.T) {
	rt := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithSpec(func(s *specs.Spec) { s.Process.Args = []string{"/no/such/program"} }))
	r := &Runtime{CLI: &runtimeclient.Runtime{Path: rt.Bin, Root: rt.Root, SystemdCgroup: rt.SystemdCgroup}}
	id := fmt.Sprintf("inproc-bad-%d", os.Getpid())
	err := r.Create(ctxT(t), id, runtimeclient.CreateOptions{Bundle: b.Dir})
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("create of a missing program: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rt.Root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state left after a failed create: %v", err)
	}
}

// The runtime binary's init refuses a parent that names another sync
// protocol version, or none: a shim and a runtime from different builds
// fail the create saying so instead of dropping what one does not know.
func TestInitRefusesOtherProtocol(t *testing.T) {
	bin := runtimetest.Binary(t)
	for _, env := range [][]string{{syncmsg.VersionVar + "=0"}, nil} {
		parent, child, err := console.NewSocketPair()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "init")
		cmd.Env = append([]string{"_BERTH_SYNCFD=3"}, env...)
		cmd.ExtraFiles = []*os.File{child}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Close()
		m, err := syncmsg.Read(parent)
		cmd.Wait()
		parent.Close()
		if err != nil || m.Type != syncmsg.TypeError || !strings.Contains(m.Message, "sync protocol version") {
			t.Fatalf("init with %q: got %+v, %v; want an error naming the protocol version", env, m, err)
		}
	}
}

// A container changed by another process between steps is seen as it is
// now: the handle kept from create decodes the state again when it
// changed (here: deleted by the runtime binary, then created again with
// another program).
func TestStepsSeeOtherProcesses(t *testing.T) {
	rt := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	r := &Runtime{CLI: &runtimeclient.Runtime{Path: rt.Bin, Root: rt.Root, SystemdCgroup: rt.SystemdCgroup}}
	ctx := ctxT(t)
	id := fmt.Sprintf("inproc-other-%d", os.Getpid())
	if err := r.Create(ctx, id, runtimeclient.CreateOptions{Bundle: b.Dir}); err != nil {
		t.Fatal(err)
	}
	first := rt.State(id).Pid
	rt.Must("delete", "--force", id)
	syscall.Wait4(first, nil, 0, nil)
	if err := r.Start(ctx, id); !errors.Is(err, runtimeclient.ErrNotExist) {
		t.Fatalf("start of a container deleted meanwhile: %v, want ErrNotExist", err)
	}
	b.Spec.Process.Args = []string{"/bin/probe", "exit", "0"}
	b.Save(t)
	rt.Must("create", "--bundle", b.Dir, id)
	second := rt.State(id).Pid
	if err := r.Kill(ctx, id, syscall.SIGKILL, false); err != nil {
		t.Fatalf("kill of the container created again: %v", err)
	}
	// The init signalled is the new one (a child of the runtime process
	// that exited, reaped by the host's init).
	deadline := time.Now().Add(10 * time.Second)
	for rt.State(id).Status != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("the container created again (init %d) was not killed", second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
}
