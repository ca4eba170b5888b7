package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/logs"
	"golang.org/x/sys/unix"
)

// stdio is what the shim holds of one process's standard streams: the
// parent ends of its pipes, or the master of its pty, and the clients
// attached to them. Output goes to the log (the init's only, as docker
// logs no exec output) and to every attached client; stdin comes from the
// attached clients.
//
// A stdio exists from the process's creation, so that clients can attach
// before it starts and miss nothing; its descriptors arrive when the
// runtime has launched the process (openPipes before, setMaster after),
// and launched (or aborted) tells input waiting for them to go on.
type stdio struct {
	tty       bool
	withStdin bool

	// child ends, handed to the runtime and closed once it has passed them
	// on (closeChildEnds); nil with a tty.
	childIn, childOut, childErr *os.File

	launchedCh chan struct{} // closed by launched or abort
	aborted    bool          // set before launchedCh closes

	stdinMu     sync.Mutex
	stdin       *os.File // pipe write end, or the pty master; nil without stdin
	stdinClosed bool

	master  *os.File   // the pty master with a tty
	outputs []*os.File // what the pumps read: stdout and stderr, or the master

	// lines cut each output into log messages (nil entries without a
	// log); pumps counts the copy loops still to reach their output's end;
	// stopped, pausing and onErr serve pause.
	lines   []*logs.LineWriter
	pumps   sync.WaitGroup
	stopped chan int
	pausing atomic.Bool
	onErr   func(error)

	mu       sync.Mutex
	attaches map[*attachment]struct{}
	ended    bool
	outDone  chan struct{} // closed when every pump has ended

	closeOnce sync.Once
}

func newStdio(tty, withStdin bool) *stdio {
	return &stdio{tty: tty, withStdin: withStdin, launchedCh: make(chan struct{}),
		attaches: map[*attachment]struct{}{}, outDone: make(chan struct{})}
}

// openPipes makes the pipes of a process without a terminal; stdin only
// when the process keeps one open (docker's -i).
func (s *stdio) openPipes() error {
	var err error
	if s.withStdin {
		if s.childIn, s.stdin, err = os.Pipe(); err != nil {
			return fmt.Errorf("stdin pipe: %w", err)
		}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdout pipe: %w", err)
	}
	s.childOut = outW
	s.outputs = append(s.outputs, outR)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stderr pipe: %w", err)
	}
	s.childErr = errW
	s.outputs = append(s.outputs, errR)
	return nil
}

// setMaster takes the pty master received from the runtime.
func (s *stdio) setMaster(master *os.File) {
	s.master = master
	s.outputs = []*os.File{master}
	if s.withStdin {
		s.stdin = master
	}
}

// launched marks the process as running with these descriptors.
func (s *stdio) launched() { close(s.launchedCh) }

// abort gives up on a process that could not be launched: descriptors are
// closed and attached clients told the output is over.
func (s *stdio) abort() {
	s.aborted = true
	close(s.launchedCh)
	s.endOutput()
	s.close()
}

// endOutput marks the output over: no attachment registers any more, the
// attached clients get their end frames, then outDone closes. The end
// frames go first: the exit's handling waits for outDone and then closes
// the attachments, and a client whose connection closed before its end
// frame took the end of the output for a shim that died.
func (s *stdio) endOutput() {
	s.mu.Lock()
	s.ended = true
	list := s.attachedLocked()
	s.mu.Unlock()
	for _, a := range list {
		a.end()
	}
	close(s.outDone)
}

// closeChildEnds drops the shim's copies of the child's pipe ends, so that
// the output pipes reach their end when the process's copies are closed.
func (s *stdio) closeChildEnds() {
	for _, f := range []*os.File{s.childIn, s.childOut, s.childErr} {
		if f != nil {
			f.Close()
		}
	}
	s.childIn, s.childOut, s.childErr = nil, nil, nil
}

// pump starts copying the outputs to the log (when log is set) and the
// attached clients. pending, when not nil, holds the unterminated line of
// each output that a shim's previous image read (shed.go).
func (s *stdio) pump(log *logs.Writer, onErr func(error), pending []pendingLine) {
	s.lines = make([]*logs.LineWriter, len(s.outputs))
	for i := range s.outputs {
		if log != nil {
			name := "stdout"
			if i == 1 {
				name = "stderr"
			}
			s.lines[i] = log.Stream(name)
			if i < len(pending) {
				s.lines[i].Resume(pending[i].Line, pending[i].First)
			}
		}
	}
	s.onErr = onErr
	s.pumps.Add(len(s.outputs))
	s.startPumps(nil)
	go func() {
		s.pumps.Wait()
		s.endOutput()
	}()
}

// startPumps starts a copy loop for every output, or for those outputs
// whose index is in only. A loop that pause stopped reports on stopped;
// one that reached the end of its output is done with s.pumps.
func (s *stdio) startPumps(only []int) {
	s.stopped = make(chan int, len(s.outputs))
	for i, f := range s.outputs {
		if only != nil && !slices.Contains(only, i) {
			continue
		}
		go func() {
			if s.copyOut(f, byte(streamStdout+i), s.lines[i], s.onErr) {
				s.stopped <- i
				return
			}
			s.stopped <- -1
			s.pumps.Done()
		}()
	}
}

// pause stops the copy loops between two reads, leaving the outputs open
// and nothing read unwritten, for a shim about to re-execute itself
// (shed.go). It fails, and restarts what it stopped, when an output
// cannot be cut short (it is not in the poller) or a loop reached its
// output's end meanwhile.
func (s *stdio) pause() error {
	for _, f := range s.outputs {
		// Clearing a deadline changes nothing, and fails where one
		// cannot be set.
		if err := f.SetReadDeadline(time.Time{}); err != nil {
			return fmt.Errorf("pause output %s: %w", f.Name(), err)
		}
	}
	s.pausing.Store(true)
	for _, f := range s.outputs {
		f.SetReadDeadline(time.Unix(1, 0))
	}
	var paused []int
	for range s.outputs {
		if i := <-s.stopped; i >= 0 {
			paused = append(paused, i)
		}
	}
	if len(paused) < len(s.outputs) {
		s.unpause(paused)
		return fmt.Errorf("%w: the output ended", errBusy)
	}
	return nil
}

// unpause restarts the copy loops pause stopped (those in paused).
func (s *stdio) unpause(paused []int) {
	for _, f := range s.outputs {
		f.SetReadDeadline(time.Time{})
	}
	s.pausing.Store(false)
	if len(paused) > 0 {
		s.startPumps(paused)
	}
}

// copyOut copies f to the log and the attached clients until the output
// ends (false) or pause stops it (true).
func (s *stdio) copyOut(f *os.File, stream byte, lw *logs.LineWriter, onErr func(error)) (paused bool) {
	buf := make([]byte, frameChunk)
	logFailed := false
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if lw != nil {
				if _, lerr := lw.Write(buf[:n]); lerr != nil && !logFailed {
					logFailed = true // reported once per stream
					onErr(lerr)
				}
			}
			s.broadcast(stream, buf[:n])
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if s.pausing.Load() {
					return true
				}
				continue // a pause's deadline, already undone
			}
			// A pty master reads EIO once no slave is open: its end
			// of file. Anything else ends the stream too.
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
				onErr(fmt.Errorf("read %s: %w", f.Name(), err))
			}
			break
		}
	}
	if lw != nil {
		lw.Flush()
	}
	return false
}

func (s *stdio) attachedLocked() []*attachment {
	list := make([]*attachment, 0, len(s.attaches))
	for a := range s.attaches {
		list = append(list, a)
	}
	return list
}

// broadcast sends output to every client attached to the stream. It
// blocks on a client that does not read, as docker's attach does.
func (s *stdio) broadcast(stream byte, p []byte) {
	s.mu.Lock()
	if len(s.attaches) == 0 {
		s.mu.Unlock()
		return
	}
	list := s.attachedLocked()
	s.mu.Unlock()
	for _, a := range list {
		if !a.wants(stream) {
			continue
		}
		if err := a.send(stream, p); err != nil {
			s.detach(a)
			a.close()
		}
	}
}

// attach registers a client; it returns false when the output has already
// ended (the client gets the end frame at once).
func (s *stdio) attach(a *attachment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.attaches[a] = struct{}{}
	return true
}

func (s *stdio) detach(a *attachment) {
	s.mu.Lock()
	delete(s.attaches, a)
	s.mu.Unlock()
}

// hasStdin tells whether clients can write to the process.
func (s *stdio) hasStdin() bool { return s.withStdin }

// writeStdin passes a client's input on. Input after stdin was closed, or
// to a process that closed its end, is dropped.
func (s *stdio) writeStdin(p []byte) {
	<-s.launchedCh
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin == nil || s.stdinClosed {
		return
	}
	if _, err := s.stdin.Write(p); err != nil && !s.tty {
		s.stdin.Close()
		s.stdinClosed = true
	}
}

// closeStdin ends the process's stdin, as docker does when the input of a
// `run -i` client ends. A terminal has no end of input to give: there the
// master stays open (docker likewise leaves a tty's stdin alone).
func (s *stdio) closeStdin() {
	<-s.launchedCh
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdin == nil || s.stdinClosed || s.tty {
		return
	}
	s.stdin.Close()
	s.stdinClosed = true
}

// resize sets the terminal's window size.
func (s *stdio) resize(width, height uint16) error {
	if !s.tty {
		return errInvalid("the process has no terminal to resize")
	}
	// Through Control: Fd would put the master back in blocking mode,
	// under the pump's read.
	rc, err := s.master.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = console.SetWinsize(int(fd), &unix.Winsize{Row: height, Col: width})
	}); err != nil {
		return err
	}
	return serr
}

// drain waits for the outputs to end after the process exited, at most
// d: in a container without its own pid namespace, a background process
// may keep a pipe open for ever. Then the shim's ends are closed, which
// ends the pumps.
func (s *stdio) drain(d time.Duration) {
	select {
	case <-s.outDone:
	case <-time.After(d):
		for _, f := range s.outputs {
			f.Close()
		}
		<-s.outDone
	}
}

// close releases everything once the process is gone and drained, or the
// shim is exiting; it may be called from both, once takes effect.
func (s *stdio) close() {
	s.closeOnce.Do(s.doClose)
}

func (s *stdio) doClose() {
	s.closeChildEnds()
	s.stdinMu.Lock()
	if s.stdin != nil && !s.stdinClosed {
		s.stdin.Close()
		s.stdinClosed = true
	}
	s.stdinMu.Unlock()
	for _, f := range s.outputs {
		f.Close()
	}
	s.mu.Lock()
	list := s.attachedLocked()
	s.mu.Unlock()
	for _, a := range list {
		a.close()
	}
}

// attachment is one client attached to a process's stdio.
type attachment struct {
	conn           *os.File
	stdout, stderr bool
	wmu            sync.Mutex
	closeOnce      sync.Once
}

func (a *attachment) wants(stream byte) bool {
	return (stream == streamStdout && a.stdout) || (stream == streamStderr && a.stderr)
}

func (a *attachment) send(stream byte, p []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return writeFrame(a.conn, stream, p)
}

// end tells the client that the output is over, and hangs up.
func (a *attachment) end() {
	a.wmu.Lock()
	writeFrame(a.conn, streamEnd, nil)
	a.wmu.Unlock()
	a.close()
}

func (a *attachment) close() {
	a.closeOnce.Do(func() { a.conn.Close() })
}
