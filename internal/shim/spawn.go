package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/runtimeclient"
)

// SpawnOptions start a shim for one container.
type SpawnOptions struct {
	// Binary is the berth-shim executable.
	Binary string
	// ID, Bundle, Runtime, RuntimeRoot, SystemdCgroup, Tty and Stdin are
	// the Config fields of the same names.
	ID            string
	Bundle        string
	Runtime       string
	RuntimeRoot   string
	SystemdCgroup bool
	Tty, Stdin    bool
	// Log is the json-file log path; empty discards the output.
	Log string
	// LogConfig caps the log; nil means logs.DefaultConfig().
	LogConfig *logs.Config
	// Env is the shim's environment (which its runtime inherits); nil
	// means the caller's.
	Env []string
	// ExecRuntime executes the runtime binary for every step even when it
	// is berth-runtime, whose lifecycle the shim otherwise runs in its
	// own process (the runc command-line contract, kept testable).
	ExecRuntime bool
	// NoStandby starts a shim of its own for the container instead of
	// taking the one started ahead of need, and starts none for later.
	NoStandby bool
}

// Args returns the shim's command line for o, after the binary.
func (o *SpawnOptions) Args() []string {
	cfg := logs.DefaultConfig()
	if o.LogConfig != nil {
		cfg = *o.LogConfig
	}
	args := []string{"--id", o.ID, "--bundle", o.Bundle, "--runtime", o.Runtime}
	if o.RuntimeRoot != "" {
		args = append(args, "--runtime-root", o.RuntimeRoot)
	}
	if o.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	if o.Log != "" {
		args = append(args, "--log", o.Log,
			"--log-max-size", strconv.FormatInt(cfg.MaxSize, 10),
			"--log-max-file", strconv.Itoa(cfg.MaxFiles))
	}
	if o.Tty {
		args = append(args, "--tty")
	}
	if o.Stdin {
		args = append(args, "--stdin")
	}
	if o.ExecRuntime {
		args = append(args, "--exec-runtime")
	}
	return args
}

// Spawn starts a shim for o.Bundle and returns a client once the container
// is created and the shim serves; the container waits for Start.
//
// The shim is started in a session of its own, its stdio on /dev/null and
// shim.log, and reports on a descriptor (its 3, --ready-fd) that it serves
// or why it failed. It stays the caller's child, reaped by a goroutine
// here, rather than being double-forked away: one exec fewer on every
// container start, and when the caller dies the shim is simply reparented
// (to init, or the nearest subreaper), which neither notices.
//
// Unless o.NoStandby, the shim is one started ahead of need (standby.go),
// which saves the container the shim's start-up, and another is started
// for the next Spawn.
//
// When ctx ends first, the shim is killed and the container it may have
// created is deleted.
func Spawn(ctx context.Context, o SpawnOptions) (*Client, error) {
	if o.Binary == "" || o.ID == "" || o.Bundle == "" || o.Runtime == "" {
		return nil, fmt.Errorf("spawn shim: binary, id, bundle and runtime are required")
	}
	sock := filepath.Join(o.Bundle, SocketFile)
	if conn, err := dialUnix(ctx, sock); err == nil {
		conn.Close()
		return nil, fmt.Errorf("spawn shim for %s: a shim already serves %s", o.ID, sock)
	}
	if !o.NoStandby {
		defer standbys.refill(o.Binary, o.Env)
		if sb := standbys.take(o.Binary, o.Env); sb != nil {
			c, err := sb.assign(ctx, o)
			if !errors.Is(err, errStandbyGone) {
				return c, err
			}
			// It died before it took the container: start one afresh.
		}
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn shim: %w", err)
	}
	defer rd.Close()
	logf, err := os.OpenFile(filepath.Join(o.Bundle, LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("spawn shim: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(o.Binary, append(o.Args(), "--ready-fd", "3")...)
	cmd.Env = shimEnv(o.Env)
	cmd.Dir = "/"
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	go cmd.Wait()
	return awaitReport(ctx, o, rd, cmd.Process)
}

// awaitReport reads the shim's report from rd and returns a client for a
// shim that serves. When ctx ends first, proc is killed and the container
// it may have created deleted.
func awaitReport(ctx context.Context, o SpawnOptions, rd io.Reader, proc *os.Process) (*Client, error) {
	type result struct {
		msg readyMsg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		line, err := bufio.NewReader(rd).ReadBytes('\n')
		switch {
		case len(line) > 0:
			r.err = json.Unmarshal(line, &r.msg)
		case err != nil:
			r.err = err
		}
		ch <- r
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		proc.Kill()
		err := fmt.Errorf("spawn shim for %s: %w", o.ID, ctx.Err())
		if derr := cleanupAfterSpawn(o); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	switch {
	case r.err != nil:
		// The shim died before reporting: its own log says why.
		return nil, fmt.Errorf("spawn shim for %s: no report from the shim (%v)%s", o.ID, r.err, tailOf(filepath.Join(o.Bundle, LogFile)))
	case r.msg.Error != "":
		return nil, fmt.Errorf("spawn shim for %s: %s", o.ID, r.msg.Error)
	}
	return &Client{dir: o.Bundle, sock: filepath.Join(o.Bundle, SocketFile), pid: r.msg.Pid}, nil
}

// cleanupAfterSpawn deletes a container a killed shim may have created.
func cleanupAfterSpawn(o SpawnOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt := &runtimeclient.Runtime{Path: o.Runtime, Root: o.RuntimeRoot, SystemdCgroup: o.SystemdCgroup, Env: o.Env}
	if err := rt.Delete(ctx, o.ID, true); err != nil && !errors.Is(err, runtimeclient.ErrNotExist) {
		return fmt.Errorf("delete the container after a cancelled spawn: %w", err)
	}
	return nil
}

// shimEnv is the environment a shim starts with: env (nil: the caller's)
// with the Go runtime set for a small process from its first instruction,
// before cmd/berth-shim's main could set it. One P (GOMAXPROCS=1): a
// second one, which package initialisation and a standby's warm-up would
// otherwise run with, leaves its own half-used spans and caches behind in
// every shim (about 170 KiB of each idle shim's private memory here). No
// heap profile (memprofilerate=0): its bucket table and records are pages
// no shim reads. No transparent huge pages for the heap (disablethp=1):
// where THP is "always" (Debian's kernels; the test guest of make
// test-vm), the first heap arena is backed by 2 MiB pages, and an idle
// shim held 8 MiB of anonymous memory instead of 1. The flag is the Go
// runtime's madvise of its own heap, not prctl(PR_SET_THP_DISABLE),
// which the container's processes would inherit. A GODEBUG of the
// caller's comes after ours, and so wins.
func shimEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+2)
	out = append(out, "GOMAXPROCS=1")
	godebug := "memprofilerate=0,disablethp=1"
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "GOMAXPROCS="):
		case strings.HasPrefix(kv, "GODEBUG="):
			if v := strings.TrimPrefix(kv, "GODEBUG="); v != "" {
				godebug += "," + v
			}
		default:
			out = append(out, kv)
		}
	}
	return append(out, "GODEBUG="+godebug)
}

// tailOf returns the last line of a file, for an error message.
func tailOf(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if last := lines[len(lines)-1]; last != "" {
		return ": " + last
	}
	return ""
}
