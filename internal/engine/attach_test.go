package engine_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/logs"
	"github.com/moby/moby/api/types/container"
)

// docker run -i: stdin reaches the process, and its end closes the
// process's stdin (StdinOnce).
func TestAttachStdin(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"sh", "-c", "cat; echo done"}, OpenStdin: true, StdinOnce: true, AttachStdin: true}, nil)
	var out syncBuffer
	attached := make(chan error, 1)
	go func() {
		attached <- v.e.Attach(ctx(t), id, engine.AttachOptions{Stdin: strings.NewReader("hello\n"), Stdout: &out, Stream: true})
	}()
	waitFor(t, 5*time.Second, "the attach", func() bool { return strings.Contains(strings.Join(v.eventsOf(id), " "), "attach") })
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 0 {
		t.Errorf("exit %d", code)
	}
	select {
	case err := <-attached:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end")
	}
	if out.String() != "hello\ndone\n" {
		t.Errorf("output %q", out.String())
	}
}

// docker run -it and the detach keys: with a terminal the output is one
// stream; ctrl-p ctrl-q ends the attach and leaves the container running.
func TestAttachTTYDetach(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"sh"}, Tty: true, OpenStdin: true}, nil)
	v.start(id)
	pr, pw := io.Pipe()
	var out syncBuffer
	attached := make(chan error, 1)
	go func() {
		attached <- v.e.Attach(ctx(t), id, engine.AttachOptions{Stdin: pr, Stdout: &out, Stream: true})
	}()
	waitFor(t, 5*time.Second, "the attach", func() bool { return strings.Contains(strings.Join(v.eventsOf(id), " "), "attach") })
	pw.Write([]byte("echo hi from the tty >&2\n"))
	waitFor(t, 5*time.Second, "the shell's output", func() bool { return strings.Contains(out.String(), "hi from the tty") })
	pw.Write([]byte{16, 17})
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("detach: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the detach keys did not end the attach")
	}
	if r := v.inspect(id); !r.State.Running {
		t.Errorf("detaching stopped the container: %+v", r.State)
	}
	if err := v.e.Resize(ctx(t), id, 40, 100); err != nil {
		t.Errorf("resize: %v", err)
	}
}

func TestLogsFollow(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("echo one; sleep 0.5; echo two >&2; sleep 0.3"), nil)
	v.start(id)
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- v.e.Logs(ctx(t), id, engine.LogsOptions{Stdout: true, Stderr: true, Follow: true, Tail: -1}, func(m *logs.Message) error {
			lines = append(lines, m.Stream+":"+string(m.Line))
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f did not end with the container")
	}
	if strings.Join(lines, "") != "stdout:one\nstderr:two\n" {
		t.Errorf("followed %q", lines)
	}
	// --tail counts the log's messages, whatever their stream (docker's
	// json-file reader filters after tailing).
	var tail []string
	v.e.Logs(ctx(t), id, engine.LogsOptions{Stdout: true, Stderr: true, Tail: 1}, func(m *logs.Message) error {
		tail = append(tail, string(m.Line))
		return nil
	})
	if strings.Join(tail, "") != "two\n" {
		t.Errorf("tail 1: %q", tail)
	}
	if err := v.e.Logs(ctx(t), id, engine.LogsOptions{}, nil); err == nil {
		t.Error("logs with no stream accepted")
	}
}

func TestRemovePaused(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("sleep 1000"), nil)
	v.start(id)
	pid := v.inspect(id).State.Pid
	if err := v.e.Pause(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Remove(ctx(t), id, engine.RemoveOptions{}); err == nil || !strings.Contains(err.Error(), "container is paused") {
		t.Errorf("rm of a paused container: %v", err)
	}
	begin := time.Now()
	if err := v.e.Remove(ctx(t), id, engine.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("rm -f of a paused container took %v", d)
	}
	assertGone(t, v, id, pid)
	if _, err := v.e.Inspect(ctx(t), id, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("inspect after rm: %v", err)
	}
}
