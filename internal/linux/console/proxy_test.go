package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w *os.File, err error) {
	t.Helper()
	r, w, err = os.Pipe()
	if err == nil {
		t.Cleanup(func() {
			r.Close()
			w.Close()
		})
	}
	return r, w, err
}

// startShell runs script in /bin/sh on a new pty's slave, which is the
// shell's standard input, output and error and the controlling terminal of
// its new session (as the stage sets up a container's terminal), and
// returns the master. The test's own copy of the slave is closed, so the
// master reports EIO once the shell is gone.
func startShell(t *testing.T, script string) (master *os.File, wait func() error) {
	t.Helper()
	master, slave, err := OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return master, cmd.Wait
}

func TestProxyRoundTrip(t *testing.T) {
	master, wait := startShell(t, `read x; echo got:$x`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := Proxy(ctx, master, strings.NewReader("hello\n"), &out); err != nil {
		t.Fatalf("Proxy: %v (output %q)", err, out.String())
	}
	if err := wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	if !strings.Contains(out.String(), "got:hello\r\n") {
		t.Errorf("output %q, want got:hello", out.String())
	}
}

// A short-lived process printing a lot must have all of its output proxied,
// and Proxy must return on the master's EIO without waiting for input that
// never comes (a user's terminal).
func TestProxyDrainsOutput(t *testing.T) {
	const lines = 3000
	master, wait := startShell(t, fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); done; echo END`, lines))
	idle, _, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := Proxy(ctx, master, idle, &out); err != nil {
		t.Fatalf("Proxy: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\r\n"), "\r\n")
	if len(got) != lines+1 || got[len(got)-1] != "END" {
		t.Fatalf("got %d lines ending %q, want %d ending END", len(got), got[len(got)-1], lines+1)
	}
	for i := 0; i < lines; i++ {
		if got[i] != fmt.Sprintf("line%d", i) {
			t.Fatalf("line %d is %q", i, got[i])
		}
	}
}

func TestProxyCancel(t *testing.T) {
	master, _ := startShell(t, `sleep 30`)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Proxy(ctx, master, nil, nil) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Proxy after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Proxy did not return after its context was cancelled")
	}
	// The caller's master is still open and back in blocking mode.
	fl, err := unix.FcntlInt(uintptr(rawFd(t, master)), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("master after Proxy: %v", err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Error("master left non-blocking")
	}
	if _, err := master.Write([]byte("\n")); err != nil {
		t.Errorf("write to master after Proxy: %v", err)
	}
}

// The user's terminal (another pty here) is the size source: its size is
// copied at the start and on SIGWINCH.
func TestProxyWindowSize(t *testing.T) {
	master, _ := openTestPty(t) // our slave copy keeps the master from EIO
	userMaster, userTerm := openTestPty(t)
	if err := SetWinsize(rawFd(t, userMaster), &unix.Winsize{Row: 30, Col: 100}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Proxy(ctx, master, userTerm, nil) }()
	defer func() {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Proxy: %v", err)
		}
	}()

	waitSize(t, master, 30, 100)
	if err := SetWinsize(rawFd(t, userMaster), &unix.Winsize{Row: 40, Col: 132}); err != nil {
		t.Fatal(err)
	}
	// userTerm is not our controlling terminal, so the kernel's SIGWINCH
	// goes nowhere; send it as a terminal would. Repeat: Proxy may not
	// have called signal.Notify yet.
	deadline := time.Now().Add(5 * time.Second)
	for !sizeIs(t, master, 40, 132) {
		if time.Now().After(deadline) {
			ws, _ := GetWinsize(rawFd(t, master))
			t.Fatalf("master size %dx%d after SIGWINCH, want 40x132", ws.Row, ws.Col)
		}
		syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		time.Sleep(20 * time.Millisecond)
	}
}

func sizeIs(t *testing.T, f *os.File, row, col uint16) bool {
	ws, err := GetWinsize(rawFd(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return ws.Row == row && ws.Col == col
}

func waitSize(t *testing.T, f *os.File, row, col uint16) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !sizeIs(t, f, row, col) {
		if time.Now().After(deadline) {
			t.Fatalf("size never became %dx%d", row, col)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
