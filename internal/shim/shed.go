package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/runtimeclient"
)

// Shedding. A shim lives as long as its container, and most of that life
// it is idle; but what its process holds then is mostly what creating the
// container left behind, and the Go runtime gives little of that back:
// the threads that the creation's blocking calls started, the spans and
// span sets of every size class the creation used, encoding/json's
// caches for the whole runtime spec, the stacks it grew. So, once the
// container has settled and nothing but waits for its exit is in
// progress, the shim re-executes itself (execve of its own binary, the
// same pid, so the container stays its child) and hands its next image
// what it serves: the listening socket, the container's output pipes or
// pty, its stdin, the connections waiting for its exit, and a little
// state. The next image starts with none of the creation's memory (an
// idle shim's private memory: 1.9 -> 1.0 MiB here).
//
// It sheds only when quiet: no exec was ever made (exec records live in
// memory only), no client is attached, no request but a wait of the init
// is in progress, the container is running and not paused. The accept
// loop stops at the listener's deadline (clients that connect meanwhile
// wait in the backlog for the next image), the output loops between two
// reads, and the reaper is held, so that the init's exit is collected by
// the next image, never lost between the two. Anything that fails before
// the execve undoes the quiescence; the shim stays as it is and tries
// again later.

// shedDelays are the waits before each attempt to shed, the first counted
// from the container's start; the last repeats.
var shedDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 5 * time.Minute}

// errBusy is a shim not quiet enough to shed now.
var errBusy = errors.New("busy")

// shedState is what a shim hands its next image, in a memory file: descriptors
// by number (they stay open across execve) and the state they need.
type shedState struct {
	Listener  int           `json:"listener"`
	Pid       int           `json:"pid"`
	StartedAt time.Time     `json:"startedAt"`
	Outputs   []int         `json:"outputs"`
	Pending   []pendingLine `json:"pending,omitempty"`
	// Stdin is the write end of the init's stdin, -1 without one (or
	// the pty master, which is Outputs[0]).
	Stdin       int    `json:"stdin"`
	StdinClosed bool   `json:"stdinClosed,omitempty"`
	Waits       []int  `json:"waits,omitempty"`
	OOMFile     string `json:"oomFile,omitempty"`
	OOMBase     uint64 `json:"oomBase,omitempty"`
}

// pendingLine is an unterminated line of one output, not logged yet.
type pendingLine struct {
	Line  []byte    `json:"line,omitempty"`
	First time.Time `json:"first"`
}

// maxShedState bounds the state handed over: two pending lines of
// logs.MaxLine, encoded.
const maxShedState = 60 << 10

// settle runs once the container has settled (shedDelays): the shim sheds
// if it can; otherwise the in-process runtime forgets its handle on the
// container and the heap goes back, and another attempt is planned.
func (s *server) settle() {
	err := s.shed()
	if err == nil {
		return // not reached: the process is the next image now
	}
	if !errors.Is(err, errBusy) {
		s.logf("shed: %v", err)
	}
	if f, ok := s.rt.(forgetter); ok {
		f.Forget(s.cfg.ID)
	}
	debug.FreeOSMemory()
	if errors.Is(err, errBusy) {
		s.mu.Lock()
		s.sheds++
		next := shedDelays[min(s.sheds, len(shedDelays)-1)]
		s.mu.Unlock()
		time.AfterFunc(next, s.settle)
	}
}

// quiet tells whether the shim may shed now, as far as its own records
// say.
func (s *server) quiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cfg.Args) == 0 || s.resumed || s.deleting || s.paused || len(s.execs) > 0 ||
		s.conns > 0 || s.init.status != StatusRunning || s.init.starting {
		return false
	}
	io := s.init.io
	io.mu.Lock()
	defer io.mu.Unlock()
	return !io.ended && len(io.attaches) == 0
}

// shed re-executes the shim with what it serves. It returns only when it
// did not, with everything as it was: errBusy when the shim was not
// quiet.
func (s *server) shed() error {
	if !s.quiet() {
		return errBusy
	}
	r := s.reaper
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[s.init.pid]; !ok || r.held > 0 {
		return errBusy // the init exited, or a runtime call is under way
	}

	// No new connection: those that come wait in the backlog.
	s.quiescing.Store(true)
	s.listener.SetReadDeadline(time.Unix(1, 0))
	<-s.acceptDone
	resume := func() {
		s.listener.SetReadDeadline(time.Time{})
		s.quiescing.Store(false)
		s.startAccepting()
	}
	if !s.quiet() {
		resume()
		return errBusy
	}
	io := s.init.io
	if err := io.pause(); err != nil {
		resume()
		return err
	}
	err := s.reexec()
	io.unpause(allIndexes(len(io.outputs)))
	resume()
	return err
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// reexec hands the quiesced shim's state to a new image of its binary.
func (s *server) reexec() error {
	io := s.init.io
	st := shedState{Listener: -1, Pid: s.init.pid, StartedAt: s.init.startedAt, Stdin: -1}
	var files []*os.File
	add := func(f *os.File) int {
		files = append(files, f)
		return fdOf(f)
	}
	st.Listener = add(s.listener)
	for i, f := range io.outputs {
		st.Outputs = append(st.Outputs, add(f))
		if lw := io.lines[i]; lw != nil {
			line, first := lw.Pending()
			st.Pending = append(st.Pending, pendingLine{Line: line, First: first})
		}
	}
	io.stdinMu.Lock()
	if io.stdin != nil && !io.stdinClosed && io.stdin != io.master {
		st.Stdin = add(io.stdin)
	}
	st.StdinClosed = io.stdinClosed
	io.stdinMu.Unlock()
	s.mu.Lock()
	for c := range s.waits {
		st.Waits = append(st.Waits, add(c))
	}
	s.mu.Unlock()
	if s.oom != nil {
		st.OOMFile, st.OOMBase = s.oom.file, s.oom.base
	}
	for _, fd := range append(st.Outputs, st.Listener) {
		if fd < 0 {
			return fmt.Errorf("a descriptor to hand over is closed")
		}
	}
	data, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	if len(data) > maxShedState {
		return fmt.Errorf("%w: %d bytes of state", errBusy, len(data))
	}
	// A memory file, not a pipe: a pipe's capacity can be below the
	// state's size (pipe-user-pages-soft), and a write nobody reads
	// before the execve would hang the shim.
	mfd, err := unix.MemfdCreate("berth-shim-state", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("state file: %w", os.NewSyscallError("memfd_create", err))
	}
	state := os.NewFile(uintptr(mfd), "berth-shim-state")
	defer state.Close()
	// At offset 0 without moving the file's offset: the next image
	// reads it from the start.
	if _, err := state.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write the state: %w", err)
	}
	stateFD := add(state)
	for _, f := range files {
		if err := setInherit(f, true); err != nil {
			for _, g := range files {
				setInherit(g, false)
			}
			return err
		}
	}
	argv := append([]string{os.Args[0]}, s.cfg.Args...)
	argv = append(argv, "--resume-fd", strconv.Itoa(stateFD))
	err = syscall.Exec("/proc/self/exe", argv, os.Environ())
	for _, f := range files {
		setInherit(f, false)
	}
	return fmt.Errorf("re-execute: %w", err)
}

// fdOf returns f's descriptor without changing its mode (Fd would make it
// blocking), or -1.
func fdOf(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1
	}
	return fd
}

// setInherit sets or clears close-on-exec on f's descriptor.
func setInherit(f *os.File, inherit bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		flag := unix.FD_CLOEXEC
		if inherit {
			flag = 0
		}
		_, serr = unix.FcntlInt(fd, unix.F_SETFD, flag)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("descriptor %s: %w", f.Name(), os.NewSyscallError("fcntl", err))
	}
	return nil
}

// Resume is Serve for the next image of a shim that shed: it takes over
// the container from the state on descriptor fd and serves until Delete.
func Resume(cfg Config, fd int) error {
	s, err := resume(cfg, fd)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	<-s.done
	s.shutdown()
	return nil
}

func resume(cfg Config, fd int) (*server, error) {
	var st shedState
	in := os.NewFile(uintptr(fd), "shed-state")
	data, err := io.ReadAll(io.LimitReader(in, maxShedState+1))
	in.Close()
	if err != nil {
		return nil, fmt.Errorf("read the state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("the state: %w", err)
	}
	nOut := 2
	if cfg.Tty {
		nOut = 1
	}
	if st.Pid <= 0 || st.Listener < 0 || len(st.Outputs) != nOut || (len(st.Pending) != 0 && len(st.Pending) != nOut) {
		return nil, fmt.Errorf("the state: %s does not describe a running container", data)
	}
	s, err := becomeShim(cfg)
	if err != nil {
		return nil, err
	}
	s.resumed = true
	file := func(fd int, name string) *os.File {
		unix.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), name)
	}
	s.listener = file(st.Listener, "shim.sock")
	io := newStdio(cfg.Tty, cfg.Stdin)
	for _, fd := range st.Outputs {
		io.outputs = append(io.outputs, file(fd, "output"))
	}
	if cfg.Tty {
		io.master = io.outputs[0]
		if cfg.Stdin {
			io.stdin = io.master
		}
	} else if st.Stdin >= 0 {
		io.stdin = file(st.Stdin, "stdin")
	}
	io.stdinClosed = st.StdinClosed
	io.launched()
	s.init = &process{srv: s, tty: cfg.Tty, stdin: cfg.Stdin, status: StatusRunning, pid: st.Pid,
		startedAt: st.StartedAt, exited: make(chan struct{}), io: io}
	if st.OOMFile != "" {
		s.oom = &oomCounter{file: st.OOMFile, base: st.OOMBase}
	}
	if cfg.Log != "" {
		w, err := logs.OpenWriter(cfg.Log, cfg.LogConfig)
		if err != nil {
			// The output still reaches attached clients.
			s.logf("resume: %v", err)
		} else {
			s.log = w
		}
	}
	// The init's exit, were it before this image's SIGCHLD handler, waits
	// as a zombie: the reap after watch collects it.
	ch := s.reaper.watch(st.Pid, 0)
	s.reaper.reap()
	io.pump(s.log, func(err error) { s.logf("container output: %v", err) }, st.Pending)
	go s.init.waitExit(ch)
	for _, fd := range st.Waits {
		conn := file(fd, "shim-conn")
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				s.conns--
				s.mu.Unlock()
			}()
			<-s.init.exited
			s.mu.Lock()
			e := s.init.exit
			s.mu.Unlock()
			writeJSONLine(conn, response{Exit: e})
			conn.Close()
		}()
	}
	s.startAccepting()
	return s, nil
}

// runtimeFor returns the Runtime the shim drives for cfg.
func (s *server) runtimeFor(cfg Config) Runtime {
	cli := &runtimeclient.Runtime{Path: cfg.Runtime, Root: cfg.RuntimeRoot, SystemdCgroup: cfg.SystemdCgroup, Starter: s.reaper}
	if cfg.InProcess != nil {
		return heldRuntime{rt: cfg.InProcess(cli, func(msg string) { s.logf("runtime: %s", msg) }), reaper: s.reaper}
	}
	return cli
}
