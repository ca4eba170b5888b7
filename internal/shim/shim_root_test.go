package shim

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/test/fixture"
)

var dockerLogLine = regexp.MustCompile(`^\{"log":"(?:[^"\\]|\\.)*","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}$`)

// lifecycle runs `echo hello`, a line on stderr and exit 3 under the
// shim with the given runtime, and checks the log, the exit and that
// Delete leaves nothing.
func lifecycle(t *testing.T, opts ...rigOption) {
	r := newRig(t, []string{"/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"}, opts...)
	c := r.spawn()
	ctx := ctxT(t)
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusCreated || st.Pid <= 0 || st.ID != r.id {
		t.Fatalf("state after spawn: %+v", st)
	}
	if c.InitPid() != st.Pid {
		t.Fatalf("Spawn's client reports init %d, State %d", c.InitPid(), st.Pid)
	}
	initPid := st.Pid
	shimPid := r.shimPid()
	if shimPid <= 0 || shimPid == os.Getpid() {
		t.Fatalf("shim.pid: %d", shimPid)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := r.mustWait(3)
	if e.OOMKilled || e.ExitedAt.IsZero() {
		t.Errorf("exit %+v", e)
	}

	// docker's json-file lines, stdout and stderr apart.
	raw := strings.TrimSpace(r.readLog())
	for _, l := range strings.Split(raw, "\n") {
		if !dockerLogLine.MatchString(l) {
			t.Errorf("log line is not docker's json-file format: %s", l)
		}
	}
	got := map[string]string{}
	for _, m := range r.logMessages() {
		got[m.Stream] += string(m.Line)
	}
	if got["stdout"] != "hello\n" || got["stderr"] != "oops\n" {
		t.Errorf("log streams %q, want stdout hello and stderr oops\n%s", got, raw)
	}

	// exit.json, as the engine reads it after a restart.
	rec, err := ReadExit(r.bundle.Dir)
	if err != nil || rec.Code != 3 || !rec.ExitedAt.Equal(e.ExitedAt) {
		t.Errorf("exit.json: %+v, %v; want %+v", rec, err, e)
	}
	st, _ = c.State(ctx)
	if st.Status != StatusStopped || st.ExitCode != 3 || st.StartedAt.IsZero() {
		t.Errorf("state after exit: %+v", st)
	}
	if err := c.Kill(ctx, syscall.SIGTERM, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill after exit: %v, want ErrNotRunning", err)
	}
	// The shim stays until Delete.
	if err := syscall.Kill(shimPid, 0); err != nil {
		t.Fatalf("shim gone before Delete: %v", err)
	}

	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(shimPid, 5*time.Second); err != nil {
		t.Errorf("shim after Delete: %v", err)
	}
	if err := waitGone(initPid, time.Second); err != nil {
		t.Errorf("init after Delete: %v", err)
	}
	if list, err := r.rt.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("runtime list after Delete: %+v, %v", list, err)
	}
	for _, f := range []string{SocketFile, PidFile} {
		if _, err := os.Stat(filepath.Join(r.bundle.Dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left after Delete: %v", f, err)
		}
	}
	if _, err := Dial(r.bundle.Dir); !errors.Is(err, ErrShimNotRunning) {
		t.Errorf("Dial after Delete: %v, want ErrShimNotRunning", err)
	}
	if _, err := c.State(ctx); !errors.Is(err, ErrShimNotRunning) || !strings.Contains(err.Error(), "container's shim is not running") {
		t.Errorf("State after Delete: %v, want ErrShimNotRunning", err)
	}
}

func TestShimLifecycle(t *testing.T) {
	t.Parallel()
	lifecycle(t)
}

func TestShimLifecycleRunc(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(runcPath); err != nil {
		t.Skip("runc is not installed at " + runcPath)
	}
	lifecycle(t, withRuntime(runcPath))
}

// forRuntimes runs fn as parallel subtests with berth-runtime (run in the
// shim's process, and executed) and with runc (skipped where runc is
// missing).
func forRuntimes(t *testing.T, fn func(t *testing.T, rt rigOption)) {
	t.Run("berth-runtime", func(t *testing.T) {
		t.Parallel()
		fn(t, func(*rig) {})
	})
	t.Run("berth-runtime-exec", func(t *testing.T) {
		t.Parallel()
		fn(t, func(r *rig) { r.opts.ExecRuntime = true })
	})
	t.Run("runc", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat(runcPath); err != nil {
			t.Skip("runc is not installed at " + runcPath)
		}
		fn(t, withRuntime(runcPath))
	})
}

const runcPath = "/usr/sbin/runc"

// A running container killed with SIGKILL exits 137; Delete then leaves no
// process, no runtime state, no cgroup and no mount behind.
func TestShimKillAndDeleteLeaveNothing(t *testing.T) {
	t.Parallel()
	forRuntimes(t, func(t *testing.T, rt rigOption) {
		r := newRig(t, []string{"/bin/probe", "sleep", "1000"}, rt)
		mountsBefore := mountsMentioning(t, r.bundle.Dir)
		c := r.spawn()
		ctx := ctxT(t)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		st, _ := c.State(ctx)
		if st.Status != StatusRunning {
			t.Fatalf("state after start: %+v", st)
		}
		cgroups := procCgroupDirs(t, st.Pid)
		if len(cgroups) == 0 {
			t.Fatal("the init has no cgroup of its own")
		}
		if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		r.mustWait(137)
		shimPid := r.shimPid()
		if err := c.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		if err := waitGone(shimPid, 5*time.Second); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(st.Pid)); err == nil {
			t.Errorf("init %d still in /proc", st.Pid)
		}
		if list, _ := r.rt.List(ctx); len(list) != 0 {
			t.Errorf("runtime still lists %+v", list)
		}
		if _, err := os.Stat(filepath.Join(r.rt.Root, r.id)); !os.IsNotExist(err) {
			t.Errorf("runtime state directory left: %v", err)
		}
		for _, d := range cgroups {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left: %v", d, err)
			}
		}
		if after := mountsMentioning(t, r.bundle.Dir); len(after) != len(mountsBefore) {
			t.Errorf("mounts under the bundle: before %q, after %q", mountsBefore, after)
		}
	})
}

// With a tty: an attached client types into the container's shell and
// reads the echo; a resize reaches the shell's terminal.
func TestShimTtyAttachResize(t *testing.T) {
	t.Parallel()
	forRuntimes(t, testTtyAttachResize)
}

func testTtyAttachResize(t *testing.T, rt rigOption) {
	r := newRig(t, []string{"/bin/sh"}, withTty, withStdin, rt)
	c := r.spawn()
	ctx := ctxT(t)
	inR, inW := io.Pipe()
	defer inW.Close()
	var out syncBuffer
	a, err := c.Attach(ctx, AttachOptions{Stdin: inR, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(ctx, 123, 45); err != nil {
		t.Fatal(err)
	}
	io.WriteString(inW, "echo typed-$((6*7))\n")
	out.waitFor(t, "typed-42")
	io.WriteString(inW, "stty size\n")
	out.waitFor(t, "45 123")
	io.WriteString(inW, "exit 7\n")
	r.mustWait(7)
	if err := a.Wait(); err != nil {
		t.Errorf("attachment ended with %v", err)
	}
	// A tty's output is logged as stdout, terminal line endings and all.
	var logged string
	for _, m := range r.logMessages() {
		if m.Stream != "stdout" {
			t.Errorf("tty output logged on %s", m.Stream)
		}
		logged += string(m.Line)
	}
	if !strings.Contains(logged, "typed-42\r\n") {
		t.Errorf("log lacks the shell's output: %q", logged)
	}
	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

// Without a tty, -i: the client's input reaches the container and its end
// closes the container's stdin, as `docker run -i` does; stdout and stderr
// reach the attached client apart.
func TestShimStdinPipe(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/sh", "-c", "cat; echo done >&2"}, withStdin)
	c := r.spawn()
	ctx := ctxT(t)
	var stdout, stderr syncBuffer
	a, err := c.Attach(ctx, AttachOptions{Stdin: strings.NewReader("line one\nline two\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.mustWait(0)
	if err := a.Wait(); err != nil {
		t.Errorf("attachment: %v", err)
	}
	if stdout.String() != "line one\nline two\n" || stderr.String() != "done\n" {
		t.Errorf("attached stdout %q stderr %q", stdout.String(), stderr.String())
	}
	// A second client attached after the end gets the end at once.
	a2, err := c.Attach(ctx, AttachOptions{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Wait(); err != nil {
		t.Errorf("late attachment: %v", err)
	}
}

// Exec without and with a tty: output to the attached client (not the
// log), exit codes, resize, kill.
func TestShimExec(t *testing.T) {
	t.Parallel()
	forRuntimes(t, testExec)
}

func testExec(t *testing.T, rt rigOption) {
	r := newRig(t, []string{"/bin/probe", "sleep", "1000"}, rt)
	c := r.spawn()
	ctx := ctxT(t)
	proc := func(args ...string) *specs.Process {
		return &specs.Process{Args: args, Cwd: "/", Env: []string{fixture.DefaultPath}}
	}
	if _, err := c.Exec(ctx, ExecOptions{ID: "early", Process: proc("/bin/true")}); !errors.Is(err, ErrNotRunning) && err != nil {
		t.Errorf("exec in a created container: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}

	e, err := c.Exec(ctx, ExecOptions{ID: "plain", Process: proc("/bin/sh", "-c", "echo out; echo err >&2; exit 5")})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	a, err := e.Attach(ctx, AttachOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if x, err := e.Wait(ctx); err != nil || x.Code != 5 {
		t.Errorf("exec wait: %+v, %v; want code 5", x, err)
	}
	if err := a.Wait(); err != nil {
		t.Error(err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("exec output: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if err := e.Start(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("second start of an exited exec: %v", err)
	}
	if _, err := c.Exec(ctx, ExecOptions{ID: "plain", Process: proc("/bin/true")}); !errors.Is(err, ErrExists) {
		t.Errorf("exec id reused: %v, want ErrExists", err)
	}
	if _, err := c.Exec(ctx, ExecOptions{ID: "../x", Process: proc("/bin/true")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad exec id: %v, want ErrInvalid", err)
	}
	// A command that cannot run: Start fails with the runtime's words,
	// Wait has docker's 127.
	me, err := c.Exec(ctx, ExecOptions{ID: "missing", Process: proc("/no/such/binary")})
	if err != nil {
		t.Fatal(err)
	}
	if err := me.Start(ctx); err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("start of a missing binary: %v", err)
	}
	if x, err := me.Wait(ctx); err != nil || x.Code != 127 {
		t.Errorf("wait for an exec that could not start: %+v, %v; want 127", x, err)
	}
	if err := c.LoadExec("nope").Start(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("start of an unknown exec: %v, want ErrNotFound", err)
	}

	// With a tty and stdin: an interactive shell, resized.
	te, err := c.Exec(ctx, ExecOptions{ID: "tty", Process: proc("/bin/sh"), Tty: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	defer inW.Close()
	var tout syncBuffer
	ta, err := te.Attach(ctx, AttachOptions{Stdin: inR, Stdout: &tout})
	if err != nil {
		t.Fatal(err)
	}
	if err := te.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := te.Resize(ctx, 77, 22); err != nil {
		t.Fatal(err)
	}
	io.WriteString(inW, "tty; stty size\n")
	tout.waitFor(t, "22 77")
	tout.waitFor(t, "/dev/pts/")
	io.WriteString(inW, "exit 4\n")
	if x, err := te.Wait(ctx); err != nil || x.Code != 4 {
		t.Errorf("tty exec wait: %+v, %v; want code 4", x, err)
	}
	ta.Wait()

	// Kill reaches an exec's process.
	ke, err := c.Exec(ctx, ExecOptions{ID: "sleeper", Process: proc("/bin/probe", "sleep", "1000")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ke.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := ke.State(ctx); st.Status != StatusRunning || st.Pid <= 0 {
		t.Errorf("exec state: %+v", st)
	}
	if err := ke.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if x, err := ke.Wait(ctx); err != nil || x.Code != 137 {
		t.Errorf("killed exec: %+v, %v; want 137", x, err)
	}
	if err := ke.Kill(ctx, syscall.SIGKILL); !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill of an exited exec: %v", err)
	}

	// Exec output is not the container's log.
	for _, m := range r.logMessages() {
		t.Errorf("exec output in the container log: %q", m.Line)
	}
	if err := c.Resize(ctx, 80, 24); !errors.Is(err, ErrInvalid) {
		t.Errorf("resize without a tty: %v, want ErrInvalid", err)
	}
	if err := c.Kill(ctx, syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	r.mustWait(137)
}

// Log rotation at a small max-size keeps max-file files, and the newest
// output.
func TestShimLogRotation(t *testing.T) {
	t.Parallel()
	script := "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"
	r := newRig(t, []string{"/bin/sh", "-c", script}, withLogConfig(logs.Config{MaxSize: 8 << 10, MaxFiles: 3}))
	c := r.spawn()
	ctx := ctxT(t)
	// A follower from the start sees the last lines as they come, and
	// ends when told the container is gone.
	stop := make(chan struct{})
	followed := make(chan []string, 1)
	go func() {
		var got []string
		logs.Read(context.Background(), r.logPath, logs.ReadConfig{Tail: -1, Follow: true, Stop: stop}, func(m *logs.Message) error {
			got = append(got, string(m.Line))
			return nil
		})
		followed <- got
	}()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.mustWait(0)
	close(stop)
	for _, p := range []string{r.logPath, r.logPath + ".1", r.logPath + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("rotated log: %v", err)
		}
		if st.Size() > 8<<10 {
			t.Errorf("%s: %d bytes, over max-size", p, st.Size())
		}
	}
	if _, err := os.Stat(r.logPath + ".3"); !os.IsNotExist(err) {
		t.Errorf("a fourth file with max-file 3: %v", err)
	}
	msgs := r.logMessages()
	if len(msgs) == 0 || string(msgs[len(msgs)-1].Line) != "line 2999\n" {
		t.Fatalf("last logged line is not line 2999")
	}
	tail := []string{}
	logs.Read(ctx, r.logPath, logs.ReadConfig{Tail: 2}, func(m *logs.Message) error {
		tail = append(tail, string(m.Line))
		return nil
	})
	if strings.Join(tail, "") != "line 2998\nline 2999\n" {
		t.Errorf("tail 2: %q", tail)
	}
	got := <-followed
	if len(got) == 0 || got[len(got)-1] != "line 2999\n" {
		t.Errorf("the follower did not get to the last line (%d lines)", len(got))
	}
}

// The shim outlives the process that spawned it: the spawner is SIGKILLed,
// and the test, a stranger to the shim, takes over through the socket.
func TestShimSurvivesStarterDeath(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/probe", "sleep", "1000"})
	helper := r.spawnViaHelper()
	shimPid := r.shimPid()
	if ppid := parentOf(t, shimPid); ppid != helper.Process.Pid {
		t.Errorf("the shim's parent is %d, want the spawner %d", ppid, helper.Process.Pid)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()

	c, err := Dial(r.bundle.Dir)
	if err != nil {
		t.Fatalf("Dial after the spawner died: %v", err)
	}
	ctx := ctxT(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx)
	if err != nil || st.Status != StatusRunning {
		t.Fatalf("state: %+v, %v", st, err)
	}
	if ppid := parentOf(t, shimPid); ppid == helper.Process.Pid {
		t.Errorf("the shim still has the dead spawner as parent")
	}
	r.c = c
	if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	r.mustWait(137)
	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitGone(shimPid, 5*time.Second); err != nil {
		t.Error(err)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// The kernel's OOM killer ends the container: exit 137 and OOMKilled.
func TestShimOOMKilled(t *testing.T) {
	t.Parallel()
	limit := int64(16 << 20)
	r := newRig(t, []string{"/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; exit 0"},
		withSpec(func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
		}))
	c := r.spawn()
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e, err := c.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// dd is killed, the shell sees 137 from it... or is itself the
	// victim; either way the cgroup recorded a kill.
	if !e.OOMKilled {
		t.Errorf("exit %+v: OOMKilled not set; log:\n%s", e, r.readLog())
	}
	rec, err := ReadExit(r.bundle.Dir)
	if err != nil || !rec.OOMKilled {
		t.Errorf("exit.json: %+v, %v", rec, err)
	}
}

// Bad input to Spawn: a clear error, and nothing left running.
func TestShimSpawnErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/true"})
	r.bundle.Spec.Process.Args = nil // the runtime refuses a process without args
	r.bundle.Save(t)
	_, err := Spawn(ctxT(t), r.opts)
	if err == nil || !strings.Contains(err.Error(), r.id) {
		t.Fatalf("spawn with an invalid spec: %v", err)
	}
	t.Logf("spawn error: %v", err)
	if _, err := Dial(r.bundle.Dir); !errors.Is(err, ErrShimNotRunning) {
		t.Errorf("a shim serves after a failed spawn: %v", err)
	}
	if list, _ := r.rt.List(ctxT(t)); len(list) != 0 {
		t.Errorf("runtime lists %+v after a failed spawn", list)
	}
	if pid := r.shimPid(); pid != 0 {
		t.Errorf("shim.pid written by a shim that failed")
	}

	// A missing runtime binary.
	r2 := newRig(t, []string{"/bin/true"}, withRuntime("/nonexistent/runtime"))
	if _, err := Spawn(ctxT(t), r2.opts); err == nil || !strings.Contains(err.Error(), "/nonexistent/runtime") {
		t.Errorf("spawn with a missing runtime: %v", err)
	}

	// A second shim for a bundle that has one.
	r3 := newRig(t, []string{"/bin/probe", "sleep", "1000"})
	r3.spawn()
	if _, err := Spawn(ctxT(t), r3.opts); err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Errorf("second spawn: %v", err)
	}
	if err := r3.c.Delete(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// An idle shim's resident memory: one per container, so it must stay
// small. Measured, logged, and held to a bound.
func TestShimIdleRSS(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/probe", "sleep", "1000"})
	c := r.spawn()
	ctx := ctxT(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := c.State(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(r.shimPid()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var rssKiB int
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rssKiB, _ = strconv.Atoi(strings.Fields(l)[1])
		}
	}
	t.Logf("idle shim RSS: %d KiB", rssKiB)
	rollup, err := os.ReadFile("/proc/" + strconv.Itoa(r.shimPid()) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smaps_rollup:\n%s", rollup)
	// The shim's own memory: anonymous pages (heap, stacks, the runtime's
	// structures). Huge pages for the heap, where THP is "always", made
	// it 4-8 MiB.
	anonKiB := -1
	for _, l := range strings.Split(string(rollup), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Anonymous:" {
			anonKiB, _ = strconv.Atoi(f[1])
		}
	}
	if anonKiB < 0 || anonKiB > 3<<10 {
		t.Errorf("idle shim anonymous memory %d KiB, want under 3 MiB", anonKiB)
	}
	// The shim keeps transparent huge pages off for itself only: the
	// container's program has the host's policy.
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := statusField(t, st.Pid, "THP_enabled"); got != "1" {
		t.Errorf("the container's init has THP_enabled %q, want 1 (the shim's flag leaked into it)", got)
	}
	t.Logf("shim THP_enabled %s", statusField(t, r.shimPid(), "THP_enabled"))
	if rssKiB <= 0 || rssKiB > 10<<10 {
		t.Errorf("idle shim RSS %d KiB, want under 10 MiB", rssKiB)
	}
	if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	r.mustWait(137)
}

// Pause and Resume show in the state; a container started again from the
// same directory (a restart) appends to its log and records its new exit.
func TestShimPauseAndRestart(t *testing.T) {
	t.Parallel()
	script := "if [ -e /ran ]; then echo second; exit 2; fi; touch /ran; echo first; read x; exit 1"
	r := newRig(t, []string{"/bin/sh", "-c", script}, withStdin)
	c := r.spawn()
	ctx := ctxT(t)
	inR, inW := io.Pipe()
	a, err := c.Attach(ctx, AttachOptions{Stdin: inR, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Status != StatusPaused {
		t.Errorf("state after pause: %+v", st)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Status != StatusRunning {
		t.Errorf("state after resume: %+v", st)
	}
	inW.Close() // read gets end of file: exit 1
	r.mustWait(1)
	a.Wait()
	if err := c.Pause(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("pause after exit: %v", err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}

	c = r.spawn()
	if _, err := ReadExit(r.bundle.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous run's exit.json is still there: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.mustWait(2)
	if e, err := ReadExit(r.bundle.Dir); err != nil || e.Code != 2 {
		t.Errorf("exit.json of the second run: %+v, %v", e, err)
	}
	var lines []string
	for _, m := range r.logMessages() {
		lines = append(lines, string(m.Line))
	}
	if strings.Join(lines, "") != "first\nsecond\n" {
		t.Errorf("log of both runs: %q", lines)
	}
}

// The container's processes start with every signal at its default: the
// shim does not want SIGTERM and the like, but must not hand its own
// dispositions down (an ignored signal survives execve).
func TestShimContainerSignalsDefault(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/sh", "-c", "exec grep -E '^Sig(Ign|Blk)' /proc/self/status"})
	// Spawned by a process that ignores SIGHUP, SIGINT, SIGUSR1 and
	// SIGPIPE, which the shim inherits.
	r.spawnViaHelper(helperIgnoreEnv + "=1")
	c, err := Dial(r.bundle.Dir)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	if err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r.mustWait(0)
	logged := ""
	for _, m := range r.logMessages() {
		logged += string(m.Line)
	}
	if logged != "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" {
		t.Errorf("the container's signal dispositions:\n%s", logged)
	}
}

// statusField is a field of /proc/PID/status.
func statusField(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, name)
	return ""
}

// An attached client gets the end of a short process's output every
// time, never a connection closed first: the shim's handling of the exit
// once closed the attachment before the end frame went out, and the
// client took that for a shim that died ("the stream ended early"; seen
// in one `docker run --rm` of fifty under emulation).
func TestShimAttachEndsCleanly(t *testing.T) {
	t.Parallel()
	r := newRig(t, []string{"/bin/probe", "sleep", "1000"})
	c := r.spawn()
	ctx := ctxT(t)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		e, err := c.Exec(ctx, ExecOptions{ID: "e" + strconv.Itoa(i), Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/", Env: []string{fixture.DefaultPath}}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := e.Attach(ctx, AttachOptions{Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatalf("exec %d: %v", i, err)
		}
	}
}
