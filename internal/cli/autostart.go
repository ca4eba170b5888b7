package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// autostartTimeout is how long berth waits for a berthd it started.
	autostartTimeout = 10 * time.Second
	// defaultExecRoot is berthd's default --exec-root, where its log goes
	// when berth starts it.
	defaultExecRoot = "/run/berth"
)

// ensureDaemon starts berthd when nothing answers on the default socket:
// the berthd binary beside this berth, else the one in PATH, as its own
// session (it outlives berth), logging to <exec-root>/berthd.log. It
// returns once berthd answers /_ping.
func ensureDaemon(ctx context.Context, host string, stderr io.Writer, debug bool) error {
	sock := strings.TrimPrefix(host, "unix://")
	if pingSocket(ctx, sock) == nil {
		return nil
	}
	bin, err := findBerthd()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("Cannot connect to berthd at %s, and only root can start it (run berthd as root, or berth as root to start it on demand)", host)
	}
	if err := os.MkdirAll(defaultExecRoot, 0o711); err != nil {
		return fmt.Errorf("start berthd: %w", err)
	}
	logPath := filepath.Join(defaultExecRoot, "berthd.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start berthd: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start berthd: %w", err)
	}
	if debug {
		fmt.Fprintf(stderr, "started %s (pid %d), log in %s\n", bin, cmd.Process.Pid, logPath)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.NewTimer(autostartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if pingSocket(ctx, sock) == nil {
				// Another berthd won the race for the lock.
				return nil
			}
			return fmt.Errorf("berthd exited while starting (%v); last lines of %s:\n%s", err, logPath, tail(logPath, 5))
		case <-deadline.C:
			return fmt.Errorf("berthd did not answer on %s within %s; see %s", host, autostartTimeout, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if pingSocket(ctx, sock) == nil {
				// berthd lives on in its own session; berth does not wait.
				cmd.Process.Release()
				return nil
			}
		}
	}
}

// pingSocket asks /_ping on the socket.
func pingSocket(ctx context.Context, sock string) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berthd/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s", resp.Status)
	}
	return nil
}

// findBerthd looks beside the running berth first, so an unpacked build
// directory works without installing, then in PATH.
func findBerthd() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "berthd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("berthd")
	if err != nil {
		return "", errors.New("berthd is not running, and no berthd binary was found next to berth or in PATH to start it")
	}
	return p, nil
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
