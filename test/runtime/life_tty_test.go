package runtime_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// lifeConsoleSocket listens on a unix socket, as containerd's shim does for
// --console-socket, and returns its path and a channel that delivers the
// pty master the runtime sends (or the error receiving it).
func lifeConsoleSocket(t *testing.T) (string, <-chan lifeMaster) {
	t.Helper()
	// sun_path holds 108 bytes: a short directory of our own.
	dir, err := os.MkdirTemp("", "lcs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan lifeMaster, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(60 * time.Second))
		conn, err := ln.AcceptUnix()
		if err != nil {
			ch <- lifeMaster{err: fmt.Errorf("accept on the console socket: %w", err)}
			return
		}
		defer conn.Close()
		f, err := conn.File()
		if err != nil {
			ch <- lifeMaster{err: err}
			return
		}
		defer f.Close()
		m, err := console.RecvFd(f)
		ch <- lifeMaster{f: m, err: err}
	}()
	return path, ch
}

type lifeMaster struct {
	f   *os.File
	err error
}

// lifeRecvMaster waits for the master from the console socket.
func lifeRecvMaster(t *testing.T, ch <-chan lifeMaster) *os.File {
	t.Helper()
	select {
	case m := <-ch:
		if m.err != nil {
			t.Fatalf("receive the pty master: %v", m.err)
		}
		t.Cleanup(func() { m.f.Close() })
		var st unix.Stat_t
		if err := unix.Fstat(int(m.f.Fd()), &st); err != nil || unix.Major(uint64(st.Rdev)) != 5 || unix.Minor(uint64(st.Rdev)) != 2 {
			t.Errorf("the received descriptor is not a pty master (/dev/ptmx 5:2): rdev %d:%d (%v)",
				unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), err)
		}
		return m.f
	case <-time.After(60 * time.Second):
		t.Fatal("no pty master on the console socket")
	}
	return nil
}

// lifeTTY collects everything read from a pty master.
type lifeTTY struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	err  error
}

// lifeReadTTY starts copying from master (through a non-blocking duplicate,
// so that closing it at clean-up stops the reader).
func lifeReadTTY(t *testing.T, master *os.File) *lifeTTY {
	t.Helper()
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "master-reader")
	tty := &lifeTTY{done: make(chan struct{})}
	go func() {
		defer close(tty.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			tty.mu.Lock()
			tty.buf.Write(b[:n])
			if err != nil {
				tty.err = err
			}
			tty.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-tty.done })
	return tty
}

func (tty *lifeTTY) String() string {
	tty.mu.Lock()
	defer tty.mu.Unlock()
	return tty.buf.String()
}

// waitFor waits until the output contains want.
func (tty *lifeTTY) waitFor(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := tty.String()
		if strings.Contains(s, want) {
			return s
		}
		select {
		case <-tty.done:
			if s = tty.String(); strings.Contains(s, want) {
				return s
			}
			t.Fatalf("terminal closed (%v) without %q; output: %q", tty.err, want, s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the terminal after %s; output: %q", want, d, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifeTerminalReport extracts the JSON of "probe tty" from terminal output.
func lifeTerminalReport(t *testing.T, out string) report.Terminal {
	t.Helper()
	i, j := strings.Index(out, `{"isatty"`), strings.LastIndex(out, "}")
	if i < 0 || j < i {
		t.Fatalf("no probe tty report in the terminal output %q", out)
	}
	var rep report.Terminal
	lifeDecode(t, "probe tty", out[i:j+1], &rep)
	return rep
}

func lifeTTYBundle(t *testing.T, args ...string) *fixture.OCIBundle {
	return fixture.Bundle(t, fixture.WithTerminal(true), fixture.WithArgs(args...),
		fixture.WithSpec(func(s *specs.Spec) {
			s.Process.ConsoleSize = &specs.Box{Height: 31, Width: 97}
			s.Process.Env = append(s.Process.Env, "TERM=xterm")
		}))
}

// TestLifeTTYConsoleSocket creates a container with a terminal, receives its
// pty master over --console-socket and reads the probe's output from it.
func TestLifeTTYConsoleSocket(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := lifeTTYBundle(t, "/bin/probe", "tty")
	id := lifeID(t)
	sock, ch := lifeConsoleSocket(t)
	res := lifeMust(t, r, "create", "--console-socket", sock, "--bundle", b.Dir, id)
	master := lifeRecvMaster(t, ch)
	tty := lifeReadTTY(t, master)
	if s := r.State(id); s.Status != "created" {
		t.Fatalf("after create: %q", s.Status)
	}
	lifeMust(t, r, "start", id)
	out := tty.waitFor(t, "}", 30*time.Second)
	rep := lifeTerminalReport(t, out)
	if rep.IsTTY != [3]bool{true, true, true} {
		t.Errorf("isatty of 0, 1, 2 in the container: %v, want all true", rep.IsTTY)
	}
	if rep.Rows != 31 || rep.Cols != 97 {
		t.Errorf("terminal size %dx%d, want process.consoleSize 31x97", rep.Rows, rep.Cols)
	}
	if strings.Contains(res.Stdout, "isatty") {
		t.Errorf("the container's output went to create's stdout, not the terminal: %q", res.Stdout)
	}
	r.WaitStatus(id, "stopped", 10*time.Second)
	lifeMust(t, r, "delete", id)
}

// TestLifeTTYInput writes to the container's terminal through the master.
func TestLifeTTYInput(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := lifeTTYBundle(t, "/bin/sh", "-c", "read x; echo got:$x")
	id := lifeID(t)
	sock, ch := lifeConsoleSocket(t)
	lifeMust(t, r, "create", "--console-socket", sock, "--bundle", b.Dir, id)
	master := lifeRecvMaster(t, ch)
	tty := lifeReadTTY(t, master)
	lifeMust(t, r, "start", id)
	// The container's stdin is the slave of the master we hold: same pty
	// number, in a devpts (136+ majors).
	ptn, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN on the received master: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/0", r.State(id).Pid), &st); err != nil {
		t.Fatal(err)
	}
	if maj, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev); maj < 136 || maj > 143 || (maj-136)*256+minor != ptn {
		t.Errorf("the container's stdin is device %d:%d, want the slave of pty %d", maj, minor, ptn)
	}
	if _, err := master.Write([]byte("hello-tty\n")); err != nil {
		t.Fatal(err)
	}
	tty.waitFor(t, "got:hello-tty", 30*time.Second)
	r.WaitStatus(id, "stopped", 10*time.Second)
	lifeMust(t, r, "delete", id)
}

// TestLifeTTYNeedsSocket checks the console-socket rules of create.
func TestLifeTTYNeedsSocket(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := lifeTTYBundle(t, "/bin/probe", "tty")
	lifeFail(t, r, []string{"console-socket"}, "create", "--bundle", b.Dir, lifeID(t))
	lifeFail(t, r, []string{"console-socket"}, "run", "-d", "--bundle", b.Dir, lifeID(t))
	plain := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "tty"))
	sock, _ := lifeConsoleSocket(t)
	lifeFail(t, r, []string{"terminal"}, "create", "--console-socket", sock, "--bundle", plain.Dir, lifeID(t))
	lifeNoLeftovers(t, r, "", "", "", nil)
}

// TestLifeTTYRunForeground runs a terminal container in the foreground with
// no console socket, under a pty of the test: the runtime proxies the
// container's terminal to its own stdio.
func TestLifeTTYRunForeground(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := lifeTTYBundle(t, "/bin/sh", "-c", "/bin/probe tty; read x; echo got:$x; exit 4")
	b.Spec.Process.ConsoleSize = nil
	b.Save(t)
	id := lifeID(t)

	master, slave, err := console.OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatalf("open a pty for the runtime: %v", err)
	}
	defer master.Close()
	if err := console.SetWinsize(int(master.Fd()), &unix.Winsize{Row: 42, Col: 123}); err != nil {
		t.Fatal(err)
	}
	tty := lifeReadTTY(t, master)
	var slaveSt unix.Stat_t
	if err := unix.Fstat(int(slave.Fd()), &slaveSt); err != nil {
		t.Fatal(err)
	}
	cmd := r.Command("run", "--bundle", b.Dir, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	waited := make(chan error, 1)
	exited := make(chan struct{})
	go func() { waited <- cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()

	out := tty.waitFor(t, "}", 30*time.Second)
	rep := lifeTerminalReport(t, out)
	if rep.IsTTY != [3]bool{true, true, true} {
		t.Errorf("isatty of 0, 1, 2 in the container: %v, want all true", rep.IsTTY)
	}
	// The user's window size reaches the container's terminal.
	if rep.Rows != 42 || rep.Cols != 123 {
		t.Errorf("container terminal size %dx%d, want the runtime's terminal's 42x123", rep.Rows, rep.Cols)
	}
	// Proxied, not passed through: the container has a pty of its own.
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/0", r.State(id).Pid), &st); err != nil {
		t.Fatal(err)
	}
	if st.Dev == slaveSt.Dev && st.Rdev == slaveSt.Rdev {
		t.Errorf("the container's stdin is the runtime's own terminal, not a pty of the container")
	}
	if unix.Major(st.Rdev) < 136 || unix.Major(st.Rdev) > 143 {
		t.Errorf("the container's stdin is device %d:%d, not a pty slave", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if _, err := master.Write([]byte("typed-in\r")); err != nil {
		t.Fatal(err)
	}
	tty.waitFor(t, "got:typed-in", 30*time.Second)
	select {
	case err := <-waited:
		var ee *exec.ExitError
		code := 0
		if err != nil {
			if !errors.As(err, &ee) {
				t.Fatalf("run: %v", err)
			}
			code = ee.ExitCode()
		}
		if code != 4 {
			t.Errorf("run with a terminal: exit status %d, want 4; output %q", code, tty.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return after the container exited; output %q", tty.String())
	}
	if ids := lifeListIDs(t, r); len(ids) != 0 {
		t.Errorf("list after the foreground run: %v", ids)
	}
}

// TestLifeTTYExec runs exec -t with a console socket in a container that
// has no terminal of its own.
func TestLifeTTYExec(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := lifeID(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	lifeStart(t, r, b, id)

	sock, ch := lifeConsoleSocket(t)
	done := make(chan lifeResult, 1)
	go func() {
		done <- lifeRun(t, r, "exec", "-t", "--console-socket", sock, id, "/bin/sh", "-c", "/bin/probe tty; read x; echo got:$x")
	}()
	var master *os.File
	select {
	case m := <-ch:
		if m.err != nil {
			t.Fatalf("receive the pty master: %v (exec: %s)", m.err, <-done)
		}
		master = m.f
		defer master.Close()
	case res := <-done:
		t.Fatalf("exec -t returned before sending a pty master: %s", res)
	}
	tty := lifeReadTTY(t, master)
	rep := lifeTerminalReport(t, tty.waitFor(t, "}", 30*time.Second))
	if rep.IsTTY != [3]bool{true, true, true} {
		t.Errorf("isatty of 0, 1, 2 in the exec'd process: %v, want all true", rep.IsTTY)
	}
	if _, err := master.Write([]byte("via-exec\n")); err != nil {
		t.Fatal(err)
	}
	tty.waitFor(t, "got:via-exec", 30*time.Second)
	select {
	case res := <-done:
		if res.Code != 0 {
			t.Errorf("exec -t: %s", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("exec -t did not return after its process exited")
	}
	// The container's own process is untouched.
	if s := r.State(id); s.Status != "running" {
		t.Errorf("container after exec -t: %q", s.Status)
	}
}
