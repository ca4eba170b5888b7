package runtimeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Runtime is one runtime binary with its global flags.
type Runtime struct {
	// Path is the runtime binary.
	Path string
	// Root is --root, the runtime's state directory; empty leaves the
	// binary's default (/run/runc, /run/crun, /run/berth-runtime).
	Root string
	// SystemdCgroup adds --systemd-cgroup.
	SystemdCgroup bool
	// Starter starts and waits for the runtime's processes; nil means
	// os/exec.
	Starter Starter
	// Env is the runtime's environment; nil means the caller's.
	Env []string
}

// A Starter starts cmd and returns a function that waits for it to exit and
// returns its exit status (128+N when killed by signal N). Cancellation is
// the caller's: it kills cmd.Process and still waits.
type Starter interface {
	Start(cmd *exec.Cmd) (wait func() (int, error), err error)
}

// execStarter is the default Starter: os/exec's Start and Wait.
type execStarter struct{}

func (execStarter) Start(cmd *exec.Cmd) (func() (int, error), error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (int, error) {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return -1, err
		}
		return ExitStatus(cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
	}, nil
}

// ExitStatus is a wait status as a shell reports it: the exit code, or 128
// plus the signal that killed the process.
func ExitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// procIO is what a command's process gets besides its arguments.
type procIO struct {
	stdin, stdout, stderr *os.File
	extra                 []*os.File
	// passthrough gives the process stdout and stderr as they are (nil:
	// /dev/null) instead of capturing the nil ones: for create and exec,
	// whose descriptors the container inherits.
	passthrough bool
}

// memfd is an anonymous in-memory file the runtime reaches by path.
type memfd struct {
	f *os.File
}

func newMemfd(name string) (*memfd, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create %s buffer: %w", name, os.NewSyscallError("memfd_create", err))
	}
	return &memfd{f: os.NewFile(uintptr(fd), name)}, nil
}

// path names the memfd for another process; /proc/self would be the other
// process's own table.
func (m *memfd) path() string {
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(m.f.Fd()))
}

// bytes returns up to limit bytes of the content from the start.
func (m *memfd) bytes(limit int64) []byte {
	b, _ := io.ReadAll(io.NewSectionReader(m.f, 0, limit))
	return b
}

func (m *memfd) close() { m.f.Close() }

// maxOutput bounds what is read back of a command's output or log: state,
// list and stats are a few KiB; a runtime that writes more is broken.
const maxOutput = 16 << 20

// run runs one runtime command for container id (empty for list and
// version) and returns its standard output (unless pio sets stdout).
func (r *Runtime) run(ctx context.Context, id string, args []string, pio *procIO) ([]byte, error) {
	if pio == nil {
		pio = &procIO{}
	}
	log, err := newMemfd("runtime-log")
	if err != nil {
		return nil, err
	}
	defer log.close()
	var out, errOut *memfd
	if pio.stdout == nil && !pio.passthrough {
		if out, err = newMemfd("runtime-stdout"); err != nil {
			return nil, err
		}
		defer out.close()
		pio.stdout = out.f
	}
	if pio.stderr == nil && !pio.passthrough {
		if errOut, err = newMemfd("runtime-stderr"); err != nil {
			return nil, err
		}
		defer errOut.close()
		pio.stderr = errOut.f
	}
	argv := r.globalArgs(log.path())
	argv = append(argv, args...)
	cmd := exec.Command(r.Path, argv...)
	cmd.Env = r.Env
	// A nil *os.File must not reach exec.Cmd as a non-nil io.Writer.
	if pio.stdin != nil {
		cmd.Stdin = pio.stdin
	}
	if pio.stdout != nil {
		cmd.Stdout = pio.stdout
	}
	if pio.stderr != nil {
		cmd.Stderr = pio.stderr
	}
	cmd.ExtraFiles = pio.extra
	status, err := r.startWait(ctx, cmd, nil)
	op := args[0]
	if err != nil {
		return nil, &Error{Op: op, ID: id, Msg: err.Error(), Status: -1, err: err}
	}
	if status != 0 {
		var stderr []byte
		if errOut != nil {
			stderr = errOut.bytes(64 << 10)
		}
		msg := logError(log.bytes(maxOutput))
		if msg == "" {
			msg = strings.TrimSpace(string(stderr))
		}
		if msg == "" {
			msg = "exit status " + strconv.Itoa(status)
		}
		if ctx.Err() != nil {
			msg = ctx.Err().Error() + ": " + msg
		}
		e := &Error{Op: op, ID: id, Msg: msg, Status: status, err: ctx.Err()}
		e.kind = r.classify(op, id, msg)
		return nil, e
	}
	if out == nil {
		return nil, nil
	}
	return out.bytes(maxOutput), nil
}

func (r *Runtime) globalArgs(logPath string) []string {
	argv := make([]string, 0, 16)
	if r.Root != "" {
		argv = append(argv, "--root", r.Root)
	}
	if r.SystemdCgroup {
		argv = append(argv, "--systemd-cgroup")
	}
	return append(argv, "--log", logPath, "--log-format", "json")
}

// startWait starts cmd through the Starter and waits for it, killing it
// when ctx ends first. started, when not nil, is called once the process
// has started or failed to.
func (r *Runtime) startWait(ctx context.Context, cmd *exec.Cmd, started func()) (int, error) {
	if started != nil {
		defer func() {
			if started != nil {
				started()
			}
		}()
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	st := r.Starter
	if st == nil {
		st = execStarter{}
	}
	wait, err := st.Start(cmd)
	if started != nil {
		started()
		started = nil
	}
	if err != nil {
		return -1, fmt.Errorf("start %s: %w", r.Path, err)
	}
	if ctx.Done() == nil {
		return wait()
	}
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		s, err := wait()
		done <- result{s, err}
	}()
	select {
	case res := <-done:
		return res.status, res.err
	case <-ctx.Done():
		cmd.Process.Kill()
		res := <-done
		return res.status, res.err
	}
}

// logEntry is a line of runc's JSON log (logrus's JSON formatter); crun
// and berth-runtime write the same keys.
type logEntry struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// logError returns the message of the last error or fatal entry of a JSON
// log, or "" when there is none.
func logError(log []byte) string {
	var last string
	for _, line := range bytes.Split(log, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var e logEntry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		if e.Level == "error" || e.Level == "fatal" || e.Level == "panic" {
			last = e.Msg
		}
	}
	return last
}
