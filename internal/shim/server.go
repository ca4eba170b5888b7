package shim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/runtimeclient"
)

// Config is the shim's command line.
type Config struct {
	// ID is the container's id, as the runtime knows it.
	ID string
	// Bundle is the bundle directory, which is also the shim's state
	// directory (shim.sock, shim.pid, init.pid, exit.json, shim.log).
	Bundle string
	// Runtime is the runtime binary; RuntimeRoot its --root (empty: the
	// binary's default); SystemdCgroup adds --systemd-cgroup.
	Runtime       string
	RuntimeRoot   string
	SystemdCgroup bool
	// Log is the json-file log of the container's output; empty discards
	// the output (docker's --log-driver none).
	Log       string
	LogConfig logs.Config
	// Tty gives the container a terminal; Stdin keeps its stdin open for
	// attached clients (docker's -t and -i).
	Tty, Stdin bool
	// ReadyFD, when >= 0, is a descriptor on which the shim reports, in
	// one JSON line, that it serves ({"pid":INIT}) or why it could not
	// ({"error":MESSAGE}); then it is closed.
	ReadyFD int
	// InProcess, when set, gives the Runtime that runs the container's
	// lifecycle in the shim's own process, from the command-line client
	// of the same runtime (for what it leaves to the binary); nil drives
	// the binary for every step. cmd/berth-shim sets it when Runtime is
	// berth-runtime.
	InProcess func(cli *runtimeclient.Runtime, warn func(string)) Runtime
	// Args is the command line that gives this Config (without
	// --ready-fd): a shim re-executes itself with it (shed.go). Empty:
	// the shim never does.
	Args []string
}

// readyMsg is the line written on the ready descriptor.
type readyMsg struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// Timeouts of runtime commands run by the shim.
const (
	createTimeout = 2 * time.Minute
	opTimeout     = time.Minute
	// drainTimeout bounds the wait for a process's output to end after it
	// exited (see stdio.drain).
	drainTimeout = 2 * time.Second
	// maxExecs bounds the exec records the shim keeps: health checks exec
	// every few seconds for the container's life. Exited execs beyond it
	// are forgotten, oldest first.
	maxExecs = 128
)

// validExecID reports whether id is an exec id the shim accepts: a letter
// or digit, then up to 127 letters, digits, '_', '.' or '-'. A loop, not a
// regexp: compiling one when the shim starts cost every container most of
// its package initialisation time.
func validExecID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// server is a running shim.
type server struct {
	cfg      Config
	rt       Runtime
	reaper   *reaper
	log      *logs.Writer
	oom      *oomCounter
	listener *os.File
	done     chan struct{}

	mu        sync.Mutex
	init      *process
	execs     map[string]*process
	execOrder []string
	paused    bool
	deleting  bool
	deleted   bool

	// conns counts connections accepted and not yet answered, but for
	// those waiting for the init's exit, which are in waits: a shim sheds
	// (shed.go) only when nothing but those is in progress. acceptDone
	// closes when the accept loop returns; quiescing makes it return at
	// the listener's deadline. resumed is set in a shim that has shed.
	conns      int
	waits      map[*os.File]struct{}
	acceptDone chan struct{}
	quiescing  atomic.Bool
	resumed    bool
	sheds      int // attempts so far
}

// Serve runs the shim: it detaches, creates the container and serves its
// socket until Delete. The caller (cmd/berth-shim) exits with its result.
func Serve(cfg Config) error {
	var ready *os.File
	if cfg.ReadyFD >= 0 {
		unix.CloseOnExec(cfg.ReadyFD)
		ready = os.NewFile(uintptr(cfg.ReadyFD), "ready")
	}
	report := func(m readyMsg) {
		if ready != nil {
			writeJSONLine(ready, m)
			ready.Close()
			ready = nil
		}
	}
	s, err := start(cfg)
	if err != nil {
		report(readyMsg{Error: err.Error()})
		return err
	}
	report(readyMsg{Pid: s.init.pid})
	<-s.done
	s.shutdown()
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, "/\x00") || c.ID == "." || c.ID == "..":
		return fmt.Errorf("invalid container id %q", c.ID)
	case !filepath.IsAbs(c.Bundle):
		return fmt.Errorf("bundle %q: not an absolute path", c.Bundle)
	case c.Runtime == "":
		return errors.New("no runtime given")
	case c.Log != "" && !filepath.IsAbs(c.Log):
		return fmt.Errorf("log %q: not an absolute path", c.Log)
	}
	return nil
}

// becomeShim makes this process the shim of cfg's container, as a
// start and a resumed image (shed.go) both are: the subreaper of the
// container's processes (the init, forked by `runtime create` which then
// exits, and every `exec --detach` process become its children; execve
// keeps the setting, set again all the same), with the shim's signal
// handling and the transparent huge page setting of what it starts.
func becomeShim(cfg Config) (*server, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a subreaper: %w", os.NewSyscallError("prctl", err))
	}
	catchSignals()
	if err := hugePagesFor(cfg); err != nil {
		return nil, err
	}
	s := newServer(cfg)
	s.reaper = newReaper()
	s.rt = s.runtimeFor(cfg)
	return s, nil
}

// start does everything up to serving: after it returns nil, the container
// exists and the socket answers.
func start(cfg Config) (*server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := detach(cfg.Bundle); err != nil {
		return nil, err
	}
	s, err := becomeShim(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Log != "" {
		w, err := logs.OpenWriter(cfg.Log, cfg.LogConfig)
		if err != nil {
			return nil, err
		}
		s.log = w
	}
	sock := filepath.Join(cfg.Bundle, SocketFile)
	if c, err := dialUnix(context.Background(), sock); err == nil {
		c.Close()
		s.closeLog()
		return nil, fmt.Errorf("a shim already serves %s", sock)
	}
	os.Remove(sock)
	l, err := listenUnix(sock)
	if err != nil {
		s.closeLog()
		return nil, err
	}
	s.listener = l
	s.init = &process{srv: s, tty: cfg.Tty, stdin: cfg.Stdin, status: StatusCreated, exited: make(chan struct{}),
		io: newStdio(cfg.Tty, cfg.Stdin)}
	if err := s.createInit(); err != nil {
		l.Close()
		os.Remove(sock)
		s.closeLog()
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(cfg.Bundle, PidFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		s.logf("%v", err)
	}
	s.startAccepting()
	return s, nil
}

func newServer(cfg Config) *server {
	return &server{cfg: cfg, done: make(chan struct{}), execs: map[string]*process{}, waits: map[*os.File]struct{}{}}
}

// startAccepting starts the accept loop.
func (s *server) startAccepting() {
	s.acceptDone = make(chan struct{})
	go s.acceptLoop(s.acceptDone)
}

// catchSignals keeps signals from ending the shim. Signals to the shim
// are not the container's: the engine sends those through the socket. A
// terminal's or a session's signals must not end the shim either. They are caught into a channel nobody reads
// (the signal package drops what does not fit) rather than ignored:
// an ignored signal stays ignored across execve, in the runtime and
// so in the container's processes, while a caught one is reset to its
// default in every child Go starts.
// This also undoes a SIGHUP or SIGINT the shim was started with
// ignored (by a careless engine, or nohup): the Go runtime keeps those
// two ignored, and installs its own handler, reset in children, for
// every other signal inherited as ignored.
func catchSignals() {
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGHUP, unix.SIGTERM, unix.SIGQUIT, unix.SIGPIPE)
}

// detach makes the shim independent of whoever started it: a session and
// process group of its own (so the starter's terminal and its group's
// signals do not reach it), "/" as working directory (no mount kept busy),
// /dev/null as stdin and stdout and shim.log as stderr (no pipe of the
// starter kept open). Spawn already starts it that way; doing it here too
// keeps the contract for any starter.
func detach(dir string) error {
	if _, err := unix.Setsid(); err != nil && err != unix.EPERM {
		// EPERM: already a process group leader, as Spawn makes it.
		return fmt.Errorf("setsid: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer unix.Close(null)
	logfd, err := unix.Open(filepath.Join(dir, LogFile), unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open shim log: %w", &os.PathError{Op: "open", Path: filepath.Join(dir, LogFile), Err: err})
	}
	defer unix.Close(logfd)
	for target, fd := range []int{null, null, logfd} {
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("redirect descriptor %d: %w", target, os.NewSyscallError("dup3", err))
		}
	}
	return nil
}

func (s *server) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), s.cfg.ID, fmt.Sprintf(format, args...))
}

func (s *server) closeLog() {
	if s.log != nil {
		s.log.Close()
	}
}

// createInit runs `runtime create` holding the container's stdio.
func (s *server) createInit() error {
	ctx, cancel := context.WithTimeout(context.Background(), createTimeout)
	defer cancel()
	p := s.init
	pidFile := filepath.Join(s.cfg.Bundle, InitPid)
	os.Remove(pidFile)
	// A restarted container reuses its directory: the last run's exit
	// must not pass for this one's.
	if err := os.Remove(filepath.Join(s.cfg.Bundle, ExitFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the previous exit status: %w", err)
	}
	pid, since, err := s.runWithStdio(p, pidFile, func(io *stdio, consoleSocket string) error {
		return s.rt.Create(ctx, s.cfg.ID, runtimeclient.CreateOptions{
			Bundle: s.cfg.Bundle, PidFile: pidFile, ConsoleSocket: consoleSocket,
			Stdin: io.childIn, Stdout: io.childOut, Stderr: io.childErr,
		})
	})
	if err != nil {
		return err
	}
	p.pid = pid
	if s.oom, err = newOOMCounter(pid); err != nil {
		s.logf("no OOM accounting: %v", err)
	}
	ch := s.reaper.watch(pid, since)
	p.io.pump(s.log, func(err error) { s.logf("container output: %v", err) }, nil)
	go p.waitExit(ch)
	return nil
}

// runWithStdio gives p its descriptors (pipes, or a console socket that
// receives the pty master), runs the runtime command launch, which leaves
// the process's pid in pidFile, and returns that pid with the reaper's
// mark from before the launch. On failure p's stdio is aborted.
func (s *server) runWithStdio(p *process, pidFile string, launch func(io *stdio, consoleSocket string) error) (pid int, since uint64, err error) {
	io := p.io
	defer func() {
		if err != nil {
			io.abort()
		}
	}()
	var cs *consoleSocket
	if p.tty {
		if cs, err = newConsoleSocket(); err != nil {
			return 0, 0, err
		}
		defer cs.close()
	} else if err = io.openPipes(); err != nil {
		return 0, 0, err
	}
	since = s.reaper.mark()
	path := ""
	if cs != nil {
		path = cs.path
	}
	err = launch(io, path)
	io.closeChildEnds()
	if err != nil {
		return 0, 0, err
	}
	if p.tty {
		master, err := cs.receive(10 * time.Second)
		if err != nil {
			return 0, 0, s.abandon(p, pidFile, fmt.Errorf("receive the pty master: %w", err))
		}
		io.setMaster(master)
	}
	if pid, err = readPid(pidFile); err != nil {
		return 0, 0, s.abandon(p, pidFile, err)
	}
	io.launched()
	return pid, since, nil
}

// abandon undoes a launch whose process the shim cannot hold: the init's
// container is deleted; an exec's process is killed when its pid is known.
func (s *server) abandon(p *process, pidFile string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if p == s.init {
		if err := s.rt.Delete(ctx, s.cfg.ID, true); err != nil {
			s.logf("delete after a failed create: %v", err)
		}
	} else if pid, err := readPid(pidFile); err == nil {
		unix.Kill(pid, unix.SIGKILL)
	}
	return cause
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, data)
	}
	return pid, nil
}

// consoleSocket is the listening socket a runtime sends a pty master to.
// It lives in a private directory of its own under $TMPDIR: the state
// directory can be too deep for sun_path, and runc connects by path.
type consoleSocket struct {
	dir, path string
	l         *os.File
}

func newConsoleSocket() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-shim-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	path := filepath.Join(dir, "pty.sock")
	l, err := listenUnix(path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{dir: dir, path: path, l: l}, nil
}

// receive takes the master the runtime sent before it exited: the
// connection is waiting in the backlog.
func (c *consoleSocket) receive(timeout time.Duration) (*os.File, error) {
	c.l.SetReadDeadline(time.Now().Add(timeout))
	conn, err := accept(c.l)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(timeout))
	return console.RecvFd(conn)
}

func (c *consoleSocket) close() {
	c.l.Close()
	os.RemoveAll(c.dir)
}

// acceptLoop serves connections until the listener is closed, or its
// deadline passes while the shim quiesces (shed.go); then it closes done.
func (s *server) acceptLoop(done chan struct{}) {
	defer close(done)
	for {
		conn, err := accept(s.listener)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if s.quiescing.Load() {
					return
				}
				continue // a deadline of a quiescence given up
			}
			if !errors.Is(err, os.ErrClosed) {
				s.logf("accept: %v", err)
			}
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

// shutdown ends the shim after Delete, which removed the socket and the
// pid file before it answered (a new shim may own those names by now);
// the exit status and the logs stay for the engine.
func (s *server) shutdown() {
	s.listener.Close()
	s.mu.Lock()
	procs := []*process{s.init}
	for _, p := range s.execs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	for _, p := range procs {
		if p.io != nil {
			p.io.close()
		}
	}
	s.closeLog()
}

// serveConn reads one request and answers it.
func (s *server) serveConn(conn *os.File) {
	defer func() {
		s.mu.Lock()
		s.conns--
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(conn, 4096)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var req request
	if err := readJSONLine(br, &req); err != nil {
		writeJSONLine(conn, response{Error: toWire(errInvalid("bad request: %v", err))})
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	if req.Op == opAttach {
		s.attach(conn, br, &req)
		return
	}
	if req.Op == opWait && req.Exec == "" {
		// Waiting, maybe for the container's whole life: the shim may
		// shed meanwhile, and hand the connection to its next image.
		s.mu.Lock()
		s.conns--
		s.waits[conn] = struct{}{}
		s.mu.Unlock()
		<-s.init.exited
		s.mu.Lock()
		delete(s.waits, conn)
		s.conns++
		s.mu.Unlock()
	}
	resp, after := s.dispatch(&req)
	writeJSONLine(conn, resp)
	conn.Close()
	if after != nil {
		after()
	}
}

// hugePagesFor gives transparent huge pages back to a shim whose runtime
// is executed (runc, crun): cmd/berth-shim disables them for itself
// before anything runs, in every image (a shed's too), and the runtime
// and the container's processes it forks, execs included, would inherit
// that; only berth-runtime clears it for them.
func hugePagesFor(cfg Config) error {
	if cfg.InProcess != nil {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("transparent huge pages: %w", os.NewSyscallError("prctl", err))
	}
	return nil
}
