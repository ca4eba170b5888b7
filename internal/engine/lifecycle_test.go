package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/test/fixture"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
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

func sh(script string) *container.Config {
	return &container.Config{Cmd: []string{"sh", "-c", script}}
}

func (v *env) start(id string) {
	v.t.Helper()
	if err := v.e.Start(ctx(v.t), id); err != nil {
		v.t.Fatalf("start: %v", err)
	}
}

// logsOf returns a container's stdout and stderr from its log.
func (v *env) logsOf(id string) (stdout, stderr string) {
	v.t.Helper()
	var o, e strings.Builder
	err := v.e.Logs(ctx(v.t), id, engine.LogsOptions{Stdout: true, Stderr: true, Tail: -1}, func(m *logs.Message) error {
		if m.Stream == "stdout" {
			o.Write(m.Line)
		} else {
			e.Write(m.Line)
		}
		return nil
	})
	if err != nil {
		v.t.Fatalf("logs: %v", err)
	}
	return o.String(), e.String()
}

func TestRunExitCodeLogsAttach(t *testing.T) {
	v := newEnv(t)
	id := v.create("run", sh("echo hi; echo oops >&2; exit 3"), nil)
	wait, err := v.e.Wait(ctx(t), id, container.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	// docker run attaches before it starts: the attach sees the first
	// byte.
	var stdout, stderr syncBuffer
	attached := make(chan error, 1)
	go func() {
		attached <- v.e.Attach(ctx(t), id, engine.AttachOptions{Stdout: &stdout, Stderr: &stderr, Stream: true})
	}()
	waitFor(t, 5*time.Second, "the attach to register", func() bool { return slices.Contains(v.eventsOf(id), "attach") })
	v.start(id)
	select {
	case r := <-wait:
		if r.StatusCode != 3 || r.Error != nil {
			t.Errorf("wait: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit")
	}
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("attach: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("attach did not end with the container")
	}
	if stdout.String() != "hi\n" || stderr.String() != "oops\n" {
		t.Errorf("attached streams %q %q", stdout.String(), stderr.String())
	}
	o, e := v.logsOf(id)
	if o != "hi\n" || e != "oops\n" {
		t.Errorf("logs %q %q", o, e)
	}
	r := v.inspect(id)
	st := r.State
	if st.Status != container.StateExited || st.Running || st.ExitCode != 3 || st.Pid != 0 || st.Error != "" {
		t.Errorf("state %+v", st)
	}
	started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
	finished, _ := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if started.IsZero() || finished.Before(started) || time.Since(started) > time.Minute {
		t.Errorf("times %s %s", st.StartedAt, st.FinishedAt)
	}
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create", "attach", "start", "die"}) {
		t.Errorf("events %v", ev)
	}
	// Started again, it runs again; the log keeps both runs.
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 3 {
		t.Errorf("second run exit %d", code)
	}
	if o, _ := v.logsOf(id); o != "hi\nhi\n" {
		t.Errorf("logs after two runs %q", o)
	}
	if m := mountsBelow(v.root); len(m) != 0 {
		t.Errorf("an exited container keeps mounts: %v", m)
	}
}

func TestStopKillPause(t *testing.T) {
	v := newEnv(t)
	id := v.create("sleeper", sh("sleep 1000"), nil)
	v.start(id)
	r := v.inspect(id)
	if !r.State.Running || r.State.Status != container.StateRunning || !processAlive(r.State.Pid) {
		t.Fatalf("not running: %+v", r.State)
	}
	// Start returns once the program's execve has closed the exec fifo,
	// a moment before the kernel has set the new command line: a top in
	// that moment shows the init as "[exe]", as it would under runc.
	var top *container.TopResponse
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		top, err = v.e.Top(ctx(t), id, "")
		if err == nil && slices.ContainsFunc(top.Processes, func(p []string) bool { return strings.Contains(p[len(p)-1], "sleep 1000") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("top %+v %v", top, err)
			break
		}
	}
	var stats []*container.StatsResponse
	if err := v.e.Stats(ctx(t), id, engine.StatsOptions{OneShot: true}, func(s *container.StatsResponse) error { stats = append(stats, s); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].MemoryStats.Usage == 0 || stats[0].PidsStats.Current == 0 || stats[0].CPUStats.SystemUsage == 0 {
		t.Errorf("stats %+v", stats)
	}
	// Streaming: a sample a second, each with the previous CPU sample.
	stats = nil
	sctx, cancel := context.WithCancel(ctx(t))
	err = v.e.Stats(sctx, id, engine.StatsOptions{Stream: true}, func(s *container.StatsResponse) error {
		stats = append(stats, s)
		if len(stats) == 2 {
			cancel()
		}
		return nil
	})
	cancel()
	if err != nil || len(stats) != 2 || stats[1].PreCPUStats.SystemUsage == 0 || !stats[1].PreRead.Equal(stats[0].Read) {
		t.Errorf("streamed stats: %d samples, %v", len(stats), err)
	}
	if err := v.e.Pause(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if r := v.inspect(id); !r.State.Paused || r.State.Status != container.StatePaused {
		t.Errorf("pause: %+v", r.State)
	}
	if err := v.e.Pause(ctx(t), id); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("pause twice: %v", err)
	}
	if err := v.e.Unpause(ctx(t), id); err != nil {
		t.Fatal(err)
	}

	// The shell is PID 1 without a TERM handler: the stop signal does
	// nothing and SIGKILL follows after the timeout.
	one := 1
	begin := time.Now()
	if err := v.e.Stop(ctx(t), id, engine.StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < time.Second || d > 8*time.Second {
		t.Errorf("stop took %v with a 1 s timeout", d)
	}
	r = v.inspect(id)
	if r.State.Running || r.State.ExitCode != 137 || processAlive(r.State.Pid) {
		t.Errorf("after stop: %+v", r.State)
	}
	if err := v.e.Stop(ctx(t), id, engine.StopOptions{}); !errors.Is(err, errdefs.ErrNotModified) {
		t.Errorf("stop of a stopped container: %v", err)
	}
	if err := v.e.Kill(ctx(t), id, ""); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("kill of a stopped container: %v", err)
	}
	ev := v.eventsOf(id)
	if !slices.Equal(ev[len(ev)-4:], []string{"kill", "kill", "die", "stop"}) {
		t.Errorf("stop events %v", ev)
	}

	// A stop signal the process handles ends it at once.
	id2 := v.create("trapper", &container.Config{Cmd: []string{"sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.1; done"}, StopSignal: "SIGUSR1"}, nil)
	v.start(id2)
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	begin = time.Now()
	if err := v.e.Stop(ctx(t), id2, engine.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("stop with a handled signal took %v", d)
	}
	if code := v.inspect(id2).State.ExitCode; code != 7 {
		t.Errorf("exit code %d after the stop signal, want 7", code)
	}

	// Kill, default SIGKILL.
	v.start(id)
	if err := v.e.Kill(ctx(t), id, ""); err != nil {
		t.Fatal(err)
	}
	if code := v.wait(id, container.WaitConditionNotRunning); code != 137 {
		t.Errorf("exit code after kill %d", code)
	}
	if err := v.e.Kill(ctx(t), id2, "SIGNOPE"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad signal: %v", err)
	}
}

func TestRestartPolicies(t *testing.T) {
	v := newEnv(t)
	onFailure := v.create("flaky", sh("exit 1"), &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}})
	always := v.create("always", sh("exit 0"), &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}})
	v.start(onFailure)
	v.start(always)
	waitFor(t, 20*time.Second, "on-failure:2 to give up", func() bool {
		r := v.inspect(onFailure)
		return r.RestartCount == 2 && r.State.Status == container.StateExited
	})
	time.Sleep(700 * time.Millisecond)
	if r := v.inspect(onFailure); r.RestartCount != 2 || r.State.Status != container.StateExited || r.State.ExitCode != 1 {
		t.Errorf("on-failure:2 did not stay exited: count %d, %+v", r.RestartCount, r.State)
	}
	if ev := v.eventsOf(onFailure); strings.Count(strings.Join(ev, " "), "start") != 3 {
		t.Errorf("on-failure:2 events %v", ev)
	}
	waitFor(t, 20*time.Second, "always to restart twice", func() bool { return v.inspect(always).RestartCount >= 2 })
	// A stop ends it, whatever state the backoff is in.
	if err := v.e.Stop(ctx(t), always, engine.StopOptions{}); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		t.Fatal(err)
	}
	count := v.inspect(always).RestartCount
	time.Sleep(1 * time.Second)
	if r := v.inspect(always); r.RestartCount != count || r.State.Running {
		t.Errorf("always kept restarting after stop: %d -> %d, %+v", count, r.RestartCount, r.State)
	}
}

func TestAutoRemove(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"sh", "-c", "exit 2"}, Volumes: map[string]struct{}{"/anon": {}}}, &container.HostConfig{AutoRemove: true})
	var anon string
	for _, m := range v.inspect(id).Mounts {
		anon = m.Name
	}
	wait, err := v.e.Wait(ctx(t), id, container.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	v.start(id)
	select {
	case r := <-wait:
		if r.StatusCode != 2 {
			t.Errorf("wait removed: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("--rm container not removed")
	}
	if _, err := v.e.Inspect(ctx(t), id, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("inspect after --rm: %v", err)
	}
	if v.e.Volumes().Exists(anon) {
		t.Error("--rm left the anonymous volume")
	}
	assertGone(t, v, id, 0)
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create", "start", "die", "destroy"}) {
		t.Errorf("events %v", ev)
	}
}

// assertGone checks that nothing of a container is left: process,
// mounts, snapshot, cgroup, runtime state, directories.
func assertGone(t *testing.T, v *env, id string, pid int) {
	t.Helper()
	if pid > 0 {
		waitFor(t, 5*time.Second, "the process to go", func() bool { return !processAlive(pid) })
	}
	if m := mountsBelow(v.root); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := v.images.Snapshotter().Stat(ctx(t), id); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("snapshot left: %v", err)
	}
	for _, d := range []string{
		filepath.Join(v.cfg.DataRoot, "containers", id),
		filepath.Join(v.cfg.ExecRoot, "containers", id),
		filepath.Join(v.cfg.ExecRoot, "runtime", id),
	} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
	unified, _ := filepath.Glob("/sys/fs/cgroup/berth/" + id)
	if len(cgroups)+len(unified) != 0 {
		t.Errorf("cgroups left: %v %v", cgroups, unified)
	}
}

func TestForceRemoveRunning(t *testing.T) {
	v := newEnv(t)
	id := v.create("busy", sh("sleep 1000"), nil)
	v.start(id)
	pid := v.inspect(id).State.Pid
	err := v.e.Remove(ctx(t), "busy", engine.RemoveOptions{})
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != `cannot remove container "/busy": container is running: stop the container before removing or force remove` {
		t.Errorf("rm of a running container: %v", err)
	}
	if err := v.e.Remove(ctx(t), "busy", engine.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	assertGone(t, v, id, pid)
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create", "start", "kill", "die", "destroy"}) {
		t.Errorf("events %v", ev)
	}
}

func TestExec(t *testing.T) {
	v := newEnv(t)
	id := v.create("", &container.Config{Cmd: []string{"sleep", "1000"}, Env: []string{"FROM=container"}}, nil)
	v.start(id)
	x, err := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{
		Cmd:          []string{"sh", "-c", "echo $FROM $EXTRA $(id -u) $PWD; echo err >&2; exit 5"},
		Env:          []string{"EXTRA=exec"},
		User:         "nobody",
		WorkingDir:   "/tmp",
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "container exec 65534 /tmp\n" || stderr.String() != "err\n" {
		t.Errorf("exec output %q %q", stdout.String(), stderr.String())
	}
	xi, err := v.e.ExecInspect(ctx(t), x)
	if err != nil {
		t.Fatal(err)
	}
	if xi.Running || xi.ExitCode == nil || *xi.ExitCode != 5 || xi.ContainerID != id || xi.ProcessConfig.Entrypoint != "sh" {
		t.Errorf("exec inspect %+v", xi)
	}
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second start of an exec: %v", err)
	}
	// Detached: returns at once; the exit is recorded later.
	x2, _ := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"sh", "-c", "sleep 0.2; exit 9"}})
	if err := v.e.ExecStart(ctx(t), x2, engine.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the detached exec to end", func() bool {
		xi, _ := v.e.ExecInspect(ctx(t), x2)
		return xi != nil && xi.ExitCode != nil && *xi.ExitCode == 9
	})
	if ids := v.inspect(id).ExecIDs; !slices.Contains(ids, x) || !slices.Contains(ids, x2) {
		t.Errorf("ExecIDs %v", ids)
	}
	if _, err := v.e.ExecInspect(ctx(t), "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown exec: %v", err)
	}
	v.e.Kill(ctx(t), id, "")
	v.wait(id, container.WaitConditionNotRunning)
	if _, err := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"true"}}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("exec in a stopped container: %v", err)
	}
	ev := strings.Join(v.eventsOf(id), "|")
	for _, want := range []string{"exec_create: sh -c", "exec_start: sh -c", "exec_die"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events %s lack %q", ev, want)
		}
	}
}

func TestVolumes(t *testing.T) {
	v := newEnv(t)
	w := v.create("writer", sh("echo persisted > /v/f"), &container.HostConfig{Binds: []string{"shared:/v"}})
	v.start(w)
	if code := v.wait(w, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("writer exit %d", code)
	}
	if err := v.e.Remove(ctx(t), w, engine.RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	r := v.create("reader", sh("cat /v/f"), &container.HostConfig{Binds: []string{"shared:/v:ro"}})
	v.start(r)
	if code := v.wait(r, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("reader exit %d", code)
	}
	if o, _ := v.logsOf(r); o != "persisted\n" {
		t.Errorf("named volume content %q", o)
	}
	if err := v.e.VolumeRemove(ctx(t), "shared", false); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("volume rm in use: %v", err)
	}

	// An image VOLUME becomes an anonymous volume filled with the image's
	// content; a named volume over image content gets it too; rm -v takes
	// the anonymous one.
	img := volumeImage(t, v)
	c := v.create("", &container.Config{Image: img, Cmd: []string{"sh", "-c", "cat /data/hello; ls -ln /data"}}, nil)
	var anon string
	for _, m := range v.inspect(c).Mounts {
		if m.Destination == "/data" {
			anon = m.Name
		}
	}
	if len(anon) != 64 {
		t.Fatalf("no anonymous volume for the image's VOLUME: %+v", v.inspect(c).Mounts)
	}
	v.start(c)
	v.wait(c, container.WaitConditionNotRunning)
	if o, _ := v.logsOf(c); !strings.HasPrefix(o, "from the image\n") || !strings.Contains(o, " 1000 ") {
		t.Errorf("anonymous volume content %q", o)
	}
	if err := v.e.Remove(ctx(t), c, engine.RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if v.e.Volumes().Exists(anon) {
		t.Error("rm -v left the anonymous volume")
	}
	nc := v.create("", &container.Config{Image: img, Cmd: []string{"cat", "/data/hello"}}, &container.HostConfig{Binds: []string{"fresh:/data"}})
	v.start(nc)
	v.wait(nc, container.WaitConditionNotRunning)
	if o, _ := v.logsOf(nc); o != "from the image\n" {
		t.Errorf("named volume not filled from the image: %q", o)
	}
	nocopy := v.create("", &container.Config{Image: img, Cmd: []string{"ls", "/data"}}, &container.HostConfig{Binds: []string{"empty:/data:nocopy"}})
	v.start(nocopy)
	v.wait(nocopy, container.WaitConditionNotRunning)
	if o, _ := v.logsOf(nocopy); o != "" {
		t.Errorf("nocopy volume filled: %q", o)
	}
}

// volumeImage imports busybox plus /data/hello (owned by 1000) as an
// image with VOLUME /data.
func volumeImage(t *testing.T, v *env) string {
	t.Helper()
	rc, err := exportImage(t, v)
	if err != nil {
		t.Fatal(err)
	}
	img, err := v.images.Import(ctx(t), rc, image.ImportOptions{Ref: "berth-test/volume:latest", Changes: []string{"VOLUME /data", `CMD ["/bin/sh"]`}})
	if err != nil {
		t.Fatal(err)
	}
	_ = img
	return "berth-test/volume:latest"
}

func TestStopSignalDefaultsAndWait(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("sleep 1000"), nil)
	if _, err := v.e.Wait(ctx(t), id, "sometime"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad wait condition: %v", err)
	}
	// not-running on a created container answers at once.
	if code := v.wait(id, container.WaitConditionNotRunning); code != 0 {
		t.Errorf("wait of a created container: %d", code)
	}
	if err := v.e.Start(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Start(ctx(t), id); !errors.Is(err, errdefs.ErrNotModified) {
		t.Errorf("start of a running container: %v", err)
	}
	zero := 0
	if err := v.e.Restart(ctx(t), id, engine.StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if r := v.inspect(id); !r.State.Running {
		t.Errorf("not running after restart: %+v", r.State)
	}
	if ev := v.eventsOf(id); ev[len(ev)-1] != "restart" {
		t.Errorf("events %v", ev)
	}
	_ = unix.SIGKILL
}

// exportImage is busybox's rootfs as a tar, plus /data/hello owned by
// 1000:1000, for an image import.
func exportImage(t *testing.T, v *env) (io.Reader, error) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		inner, innerW := io.Pipe()
		go func() { innerW.CloseWithError(archive.Tar(ctx(t), fixture.Rootfs(t), innerW, archive.TarOptions{})) }()
		tr := tar.NewReader(inner)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			tw.WriteHeader(hdr)
			io.Copy(tw, tr)
		}
		tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000})
		tw.WriteHeader(&tar.Header{Name: "data/hello", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 1000, Size: 15})
		tw.Write([]byte("from the image\n"))
		pw.CloseWithError(tw.Close())
	}()
	return pr, nil
}
