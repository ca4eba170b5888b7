package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
)

const notFoundMsg = `exec: "nosuchcmd": executable file not found in $PATH: unknown`

// docker run img nosuchcmd without --rm: the start fails with docker's
// message, the attach made before it ends, and the container stays
// "created" with exit code 127 and the error recorded, as dockerd
// leaves it. A program that is there but cannot be run gives 126.
func TestStartFailure(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"nosuchcmd"}}, nil)
	var out syncBuffer
	attached := make(chan error, 1)
	registered := make(chan struct{})
	go func() {
		attached <- v.e.Attach(ctx(t), id, engine.AttachOptions{Stdout: &out, Stderr: &out, Stream: true,
			Registered: func() error { close(registered); return nil }})
	}()
	<-registered
	err := v.e.Start(ctx(t), id)
	if err == nil || !errors.Is(err, errdefs.ErrInvalid) ||
		!strings.HasPrefix(err.Error(), "failed to create task for container: ") || !strings.HasSuffix(err.Error(), notFoundMsg) {
		t.Fatalf("start of a missing program: %v", err)
	}
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("attach ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the attach did not end with the failed start")
	}
	st := v.inspect(id).State
	if st.Status != container.StateCreated || st.ExitCode != 127 || st.Error != err.Error() || st.Running || st.Pid != 0 {
		t.Errorf("state after the failed start: %+v", st)
	}
	if out.String() != "" {
		t.Errorf("attach got %q", out.String())
	}
	if slices.Contains(v.eventsOf(id), "start") {
		t.Errorf("a failed start emitted start: %v", v.eventsOf(id))
	}

	id2 := v.create("", &container.Config{Cmd: []string{"/etc/passwd"}}, nil)
	err = v.e.Start(ctx(t), id2)
	if err == nil || !strings.HasSuffix(err.Error(), `exec: "/etc/passwd": permission denied: unknown`) {
		t.Errorf("start of a file that is not executable: %v", err)
	}
	if st := v.inspect(id2).State; st.ExitCode != 126 || st.Status != container.StateCreated {
		t.Errorf("state: %+v", st)
	}
	// --rm: the container that could not start is gone when Start
	// returns, and a wait for its removal ends.
	id3 := v.create("", &container.Config{Cmd: []string{"nosuchcmd"}}, &container.HostConfig{AutoRemove: true})
	removed, err := v.e.Wait(ctx(t), id3, container.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.Start(ctx(t), id3); err == nil || !strings.HasSuffix(err.Error(), notFoundMsg) {
		t.Errorf("start of a --rm container with a missing program: %v", err)
	}
	if _, err := v.e.Inspect(ctx(t), id3, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the --rm container after its failed start: %v", err)
	}
	select {
	case r := <-removed:
		if r.StatusCode != 127 {
			t.Errorf("wait for removal: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Error("the wait for removal did not end")
	}

	// Nothing of the failed starts is left mounted but the created
	// containers' roots.
	for _, m := range mountsBelow(v.root) {
		if !strings.HasSuffix(m, "/rootfs") {
			t.Errorf("mount left by a failed start: %s", m)
		}
	}
}

// docker exec c nosuchcmd: the start fails with docker's message, and
// the exec has ended with 127 (126 for a program that cannot be run),
// which the docker CLI exits with.
func TestExecStartFailure(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"sleep", "1000"}}, nil)
	v.start(id)
	for _, c := range []struct {
		cmd  string
		code int
		msg  string
	}{
		{"nosuchcmd", 127, notFoundMsg},
		{"/etc/passwd", 126, `exec: "/etc/passwd": permission denied: unknown`},
	} {
		for _, detach := range []bool{false, true} {
			x, err := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{c.cmd}, AttachStdout: true, AttachStderr: true})
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			err = v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{Detach: detach, Stdout: &out, Stderr: &out})
			if err == nil || !strings.HasPrefix(err.Error(), "OCI runtime exec failed: exec failed: unable to start container process: ") || !strings.HasSuffix(err.Error(), c.msg) {
				t.Errorf("exec %s (detach %v): %v", c.cmd, detach, err)
			}
			xi, err := v.e.ExecInspect(ctx(t), x)
			if err != nil {
				t.Fatal(err)
			}
			if xi.Running || xi.ExitCode == nil || *xi.ExitCode != c.code || !xi.CanRemove {
				t.Errorf("exec %s (detach %v): inspect %+v", c.cmd, detach, xi)
			}
		}
	}
	// The container is unharmed and a good exec still runs.
	if st := v.inspect(id).State; !st.Running {
		t.Fatalf("container after failed execs: %+v", st)
	}
	x, _ := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"true"}})
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{}); err != nil {
		t.Errorf("exec true: %v", err)
	}
}

// docker diff of a container that changed nothing shows nothing: not
// the files the engine binds over, nor /etc for them; the user's own
// changes in /etc show.
func TestChangesHideInitLayer(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("sleep 1000"), nil)
	v.start(id)
	changes, err := v.e.Changes(ctx(t), id)
	if err != nil || changes == nil || len(changes) != 0 {
		t.Fatalf("changes of an untouched container: %v %v", changes, err)
	}
	x, _ := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"touch", "/etc/mine"}})
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{}); err != nil {
		t.Fatal(err)
	}
	changes, err = v.e.Changes(ctx(t), id)
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	if err != nil || !slices.Equal(got, []string{"C /etc", "A /etc/mine"}) {
		t.Errorf("changes: %q %v", got, err)
	}
}

// AttachOptions.Registered is called once the attach is in place and
// before any output is written: a start made from it (what docker run
// does on the 101 answer) loses nothing, for a container started by the
// attach's client and for one already running.
func TestAttachRegistered(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("echo first; exit 0"), nil)
	var out syncBuffer
	started := make(chan error, 1)
	err := v.e.Attach(ctx(t), id, engine.AttachOptions{Stdout: &out, Stream: true, Registered: func() error {
		if out.String() != "" {
			t.Error("output written before Registered")
		}
		// Started from another goroutine, as by the client's next
		// request; the attach waits for its output.
		go func() { started <- v.e.Start(ctx(t), id) }()
		return nil
	}})
	if err != nil || <-started != nil {
		t.Fatalf("attach: %v", err)
	}
	if out.String() != "first\n" {
		t.Errorf("attached output %q", out.String())
	}

	// A refusal from Registered ends the attach with it and takes the
	// attach away: a later start runs without it.
	id2 := v.create("", sh("echo second"), nil)
	refused := errors.New("client gone")
	var out2 syncBuffer
	if err := v.e.Attach(ctx(t), id2, engine.AttachOptions{Stdout: &out2, Stream: true, Registered: func() error { return refused }}); err != refused {
		t.Errorf("attach with a refusing Registered: %v", err)
	}
	v.start(id2)
	v.wait(id2, container.WaitConditionNotRunning)
	if out2.String() != "" {
		t.Errorf("a refused attach got %q", out2.String())
	}

	// Running: what the process writes after Registered reaches the
	// attach whole, and logs=1 replays what came before, first.
	id3 := v.create("", &container.Config{Cmd: []string{"sh", "-c", "echo before; read x; echo after $x"}, OpenStdin: true}, nil)
	v.start(id3)
	waitFor(t, 5*time.Second, "the first line in the log", func() bool { o, _ := v.logsOf(id3); return o == "before\n" })
	var out3 syncBuffer
	err = v.e.Attach(ctx(t), id3, engine.AttachOptions{Stdin: strings.NewReader("in\n"), Stdout: &out3, Logs: true, Stream: true,
		Registered: func() error {
			if out3.String() != "" {
				t.Error("log replayed before Registered")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if out3.String() != "before\nafter in\n" {
		t.Errorf("attach with logs to a running container: %q", out3.String())
	}
}
