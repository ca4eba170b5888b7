package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// A berthd restart: the engine closes without stopping anything and a new
// one opens on the same roots. Running containers are found again and
// stay controllable; one whose process exited meanwhile shows its real
// exit code; one whose shim was killed shows 255 and an error; an
// "always" container killed meanwhile is brought back.
func TestLiveRestore(t *testing.T) {
	v := newEnv(t)
	keep := v.create("keep", sh("echo before; sleep 1000"), nil)
	dies := v.create("dies", sh(`trap "exit 4" TERM; while :; do sleep 0.1; done`), nil)
	lost := v.create("lost", sh("sleep 1000"), nil)
	always := v.create("always", sh("sleep 1000"), &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}})
	for _, id := range []string{keep, dies, lost, always} {
		v.start(id)
	}
	waitFor(t, 5*time.Second, "the first output", func() bool { o, _ := v.logsOf(keep); return o == "before\n" })
	time.Sleep(200 * time.Millisecond) // the trap is set
	pids := map[string]int{}
	for _, id := range []string{keep, dies, lost, always} {
		pids[id] = v.inspect(id).State.Pid
	}

	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	for id, pid := range pids {
		if !processAlive(pid) {
			t.Fatalf("Close stopped container %s", id)
		}
	}
	// Meanwhile: one exits on its own, one loses its shim, one is killed.
	unix.Kill(pids[dies], unix.SIGTERM)
	waitFor(t, 5*time.Second, "the trapped exit", func() bool { return !processAlive(pids[dies]) })
	killShim(t, v, lost)
	unix.Kill(pids[always], unix.SIGKILL)
	waitFor(t, 5*time.Second, "the killed process", func() bool { return !processAlive(pids[always]) })

	v.reopen()
	r := v.inspect(keep)
	if !r.State.Running || r.State.Pid != pids[keep] {
		t.Errorf("running container after restore: %+v (pid was %d)", r.State, pids[keep])
	}
	if r := v.inspect(dies); r.State.Status != container.StateExited || r.State.ExitCode != 4 {
		t.Errorf("container that exited meanwhile: %+v", r.State)
	}
	if r := v.inspect(lost); r.State.Status != container.StateExited || r.State.Running || r.State.ExitCode == 0 || processAlive(pids[lost]) {
		t.Errorf("container whose shim died: %+v", r.State)
	}
	waitFor(t, 10*time.Second, "always to come back", func() bool {
		r := v.inspect(always)
		return r.State.Running && r.State.Pid != pids[always]
	})
	// Still controllable: exec, logs, stop.
	x, err := v.e.ExecCreate(ctx(t), keep, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo after"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{Stdout: &out}); err != nil || out.String() != "after\n" {
		t.Errorf("exec after restore: %q %v", out.String(), err)
	}
	if o, _ := v.logsOf(keep); o != "before\n" {
		t.Errorf("logs after restore %q", o)
	}
	zero := 0
	if err := v.e.Stop(ctx(t), keep, engine.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if r := v.inspect(keep); r.State.Running || processAlive(pids[keep]) || r.State.ExitCode != 137 {
		t.Errorf("stop after restore: %+v", r.State)
	}
	if ev := v.eventsOf(dies); !slices.Contains(ev, "die") {
		t.Errorf("no die event for the exit found at restore: %v", ev)
	}
}

// killShim kills a container's shim and its container process, as a crash
// of both would.
func killShim(t *testing.T, v *env, id string) {
	t.Helper()
	r := v.inspect(id)
	data, err := readFile(v.cfg.ExecRoot + "/containers/" + id + "/shim.pid")
	if err != nil {
		t.Fatal(err)
	}
	var shimPid int
	for _, c := range strings.TrimSpace(data) {
		shimPid = shimPid*10 + int(c-'0')
	}
	unix.Kill(shimPid, unix.SIGKILL)
	unix.Kill(r.State.Pid, unix.SIGKILL)
	waitFor(t, 5*time.Second, "the shim to die", func() bool { return !processAlive(shimPid) && !processAlive(r.State.Pid) })
}
