package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// removeAllContainers removes every container and volume when the test
// ends, before berthd stops: berthd leaves containers running on exit.
func (d *daemon) removeAllContainers(t *testing.T) {
	t.Cleanup(func() {
		ids := strings.Fields(d.berth(t, "ps", "-aq", "--no-trunc").Stdout)
		if len(ids) > 0 {
			if r := d.berth(t, append([]string{"rm", "-f", "-v"}, ids...)...); r.Code != 0 {
				t.Errorf("rm -f at the end: %s", r.Stderr)
			}
		}
		if vols := strings.Fields(d.berth(t, "volume", "ls", "-q").Stdout); len(vols) > 0 {
			d.berth(t, append([]string{"volume", "rm", "-f"}, vols...)...)
		}
	})
}

// restart stops berthd with SIGTERM and starts it again on the same
// roots, as an upgrade or a service restart does.
func (d *daemon) restart(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("berthd did not stop within 20s of SIGTERM")
	}
	args := d.cmd.Args[1:]
	d.cmd = exec.Command(d.cmd.Path, args...)
	var logBuf syncBuffer
	d.cmd.Stdout, d.cmd.Stderr = &logBuf, &logBuf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			logBuf.mu.Lock()
			t.Logf("restarted berthd log:\n%s", logBuf.String())
			logBuf.mu.Unlock()
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if resp, err := d.request(t, "GET", "/_ping", nil); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted berthd did not answer /_ping within " + startTimeout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// term is a command running on a pseudo-terminal the test drives.
type term struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan error
}

// openPTY opens a new pseudo-terminal pair: /dev/ptmx, unlocked, and its
// peer named by TIOCGPTN.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100})
	return m, s, nil
}

// startTerm runs name with args on a new pty as its controlling terminal.
func startTerm(t *testing.T, env []string, name string, args ...string) *term {
	t.Helper()
	m, s, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tm := &term{t: t, master: m, cmd: cmd, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { tm.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		m.Close()
	})
	return tm
}

func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// expect waits until the terminal shows s: a second here, up to tens of
// seconds for a run -it to show its prompt in make test-vm's emulated
// guest on a busy host.
func (tm *term) expect(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(tm.output(), s) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("terminal did not show %q; it shows:\n%q", s, tm.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.master, s); err != nil {
		tm.t.Fatal(err)
	}
}

// wait returns the command's exit status.
func (tm *term) wait() int {
	tm.t.Helper()
	select {
	case err := <-tm.done:
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		if ok := asExit(err, &ee); ok {
			return ee.ExitCode()
		}
		tm.t.Fatal(err)
	case <-time.After(20 * time.Second):
		tm.t.Fatalf("the command on the terminal did not end; it shows:\n%q", tm.output())
	}
	return -1
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// dockerEnv is the environment of the docker CLI against d.
func (d *daemon) dockerEnv() []string {
	cfg := filepath.Join(d.ExecRoot, "docker-config")
	os.MkdirAll(cfg, 0o700)
	return []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + cfg, "DOCKER_API_VERSION="}
}

// dockerIn runs the docker CLI with stdin.
func (d *daemon) dockerIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return run(t, d.dockerEnv(), strings.NewReader(stdin), dockerCLI(t), args...)
}

// berthIn runs berth with stdin.
func (d *daemon) berthIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return run(t, nil, strings.NewReader(stdin), filepath.Join(d.bin, "berth"), append([]string{"-H", d.Host}, args...)...)
}
