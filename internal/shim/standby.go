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
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A shim's own start-up (a Go runtime, a static binary's pages, package
// initialisation) is on the way of every container start. So Spawn keeps
// one shim started ahead of need, a standby, per binary and environment:
// it has done all of that and waits, doing nothing, for the command line
// of the container it is to serve.
//
//	spawner                              standby (berth-shim --standby --ready-fd 3)
//	  |  socketpair; starts the standby      |  starts, then blocks reading descriptor 3
//	  | ------ ["--id", ID, ...]\n --------> |  parses it as its command line
//	  | <----- {"pid":N} or {"error":...}\n  |  what a shim reports on --ready-fd
//	  |  starts the next standby             |  serves the container as any shim
//
// The standby is in a session of its own with "/" as working directory
// and /dev/null as stdio, as Spawn starts any shim; it holds nothing of
// the spawner's but its end of the socket pair. When the spawner exits
// before giving it a container, the socket's end of file makes it exit.
// A standby found dead when taken (killed meanwhile) is replaced by a
// fresh start.

// standbys is the spawner's standby shims.
var standbys = &standbyPool{spares: map[string]*standby{}, filling: map[string]bool{}}

type standbyPool struct {
	mu      sync.Mutex
	spares  map[string]*standby // by standbyKey
	filling map[string]bool
}

// standby is a shim waiting for its container.
type standby struct {
	conn  *os.File // the spawner's end of the socket pair
	proc  *os.Process
	pidfd int // the standby's pidfd, -1 when the kernel gave none
}

// errStandbyGone is a standby that exited before it took its container.
var errStandbyGone = errors.New("the standby shim is gone")

func standbyKey(binary string, env []string) string {
	if env == nil {
		return binary + "\x00inherit"
	}
	return binary + "\x00" + strings.Join(env, "\x00")
}

// take returns the standby for binary and env, if one is waiting.
func (p *standbyPool) take(binary string, env []string) *standby {
	k := standbyKey(binary, env)
	p.mu.Lock()
	sb := p.spares[k]
	delete(p.spares, k)
	p.mu.Unlock()
	return sb
}

// refill starts a standby for binary and env unless one waits or starts
// already. It returns at once; the start goes on in the background.
func (p *standbyPool) refill(binary string, env []string) {
	k := standbyKey(binary, env)
	p.mu.Lock()
	if p.spares[k] != nil || p.filling[k] {
		p.mu.Unlock()
		return
	}
	p.filling[k] = true
	p.mu.Unlock()
	go func() {
		sb, err := startStandby(binary, env)
		p.mu.Lock()
		delete(p.filling, k)
		if err == nil {
			p.spares[k] = sb
		}
		p.mu.Unlock()
	}()
}

// startStandby starts a shim with --standby.
func startStandby(binary string, env []string) (*standby, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	// Ours is non-blocking, so that the poller can cut a read short; the
	// shim's stays blocking.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, os.NewSyscallError("fcntl", err)
	}
	conn := os.NewFile(uintptr(fds[0]), "standby")
	child := os.NewFile(uintptr(fds[1]), "standby-shim")
	defer child.Close()
	cmd := exec.Command(binary, "--standby", "--ready-fd", "3")
	cmd.Env = shimEnv(env)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{child}
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start standby shim: %w", err)
	}
	go cmd.Wait()
	return &standby{conn: conn, proc: cmd.Process, pidfd: pidfd}, nil
}

// gone reports whether the standby has exited. Its pidfd says so
// whatever else holds the socket's other end (a child forked by the
// spawner meanwhile, between its fork and its exec, holds a copy).
func (sb *standby) gone() bool {
	rc, err := sb.conn.SyscallConn()
	if err != nil {
		return true
	}
	n := 0
	// Through Control: Fd would put the socket back in blocking mode,
	// and the read of the report could not be cut short.
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if sb.pidfd >= 0 {
			fds = append(fds, unix.PollFd{Fd: int32(sb.pidfd), Events: unix.POLLIN})
		}
		n, err = unix.Poll(fds, 0)
	})
	return cerr != nil || err != nil || n > 0
}

// drop lets go of a standby that will not be given a container: it sees
// the end of its socket and exits.
func (sb *standby) drop() {
	sb.conn.Close()
	if sb.pidfd >= 0 {
		unix.Close(sb.pidfd)
	}
}

// assign gives the standby its container and waits for its report, as
// Spawn does for a shim it starts. errStandbyGone means it never took the
// container.
func (sb *standby) assign(ctx context.Context, o SpawnOptions) (*Client, error) {
	defer sb.conn.Close()
	if sb.pidfd >= 0 {
		defer unix.Close(sb.pidfd)
	}
	// Before anything is written, a standby has nothing to say: a
	// readable socket or pidfd means it died.
	if sb.gone() {
		sb.proc.Kill()
		return nil, errStandbyGone
	}
	args, err := json.Marshal(o.Args())
	if err != nil {
		sb.proc.Kill()
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if _, err := sb.conn.Write(append(args, '\n')); err != nil {
		sb.proc.Kill()
		return nil, errStandbyGone
	}
	return awaitReport(ctx, o, sb.conn, sb.proc)
}

// maxStandbyArgs bounds the command line a standby reads.
const maxStandbyArgs = 64 << 10

// AwaitArgs is the standby's side: it blocks until the spawner sends the
// command line of the shim to become on descriptor fd, and returns it.
// io.EOF means the spawner went away without one: the standby exits.
// The descriptor stays open for the report (Config.ReadyFD).
func AwaitArgs(fd int) ([]string, error) {
	unix.CloseOnExec(fd)
	// A dup for the reader: the report goes out on fd itself, which the
	// reader's finalizer must not close.
	dfd, err := unix.Dup(fd)
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(dfd)
	r := os.NewFile(uintptr(dfd), "standby-read")
	defer r.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxStandbyArgs), 4096).ReadBytes('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read the command line of the standby: %w", err)
	}
	var args []string
	if err := json.Unmarshal(line, &args); err != nil {
		return nil, fmt.Errorf("the command line of the standby: %w", err)
	}
	return args, nil
}

// ReportError reports err on the ready descriptor fd as Serve reports a
// failure, for a shim that fails before it can serve (a standby given a
// command line it cannot parse), and closes fd.
func ReportError(fd int, err error) {
	f := os.NewFile(uintptr(fd), "ready")
	writeJSONLine(f, readyMsg{Error: err.Error()})
	f.Close()
}
