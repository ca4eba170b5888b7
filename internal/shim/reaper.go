package shim

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/runtimeclient"
)

// reaper collects the exit status of every child of the shim. The shim is
// a child subreaper (PR_SET_CHILD_SUBREAPER): the container's init, forked
// by `runtime create`, and each `exec --detach` process become its
// children when the runtime exits, and so do orphans of a container that
// shares the host's pid namespace. All of them must be reaped, and only
// wait4(-1) reaps what one does not know of yet; so the reaper is the one
// place that waits, and everyone else asks it:
//
//   - runtime commands through Start (runtimeclient.Starter): the pid is
//     registered under the lock the reap loop takes, before it can exit;
//   - the init and exec processes through watch, by the pid the runtime
//     wrote, which may exit before the pid file is read: exits nobody
//     waits for are kept (a bounded number), stamped with a sequence
//     number, and watch(pid, since) takes one only if it was reaped after
//     `since`, so that a pid reused since an old exit is not confused
//     with it.
//
// An in-process runtime call (heldRuntime) starts children of its own
// with os/exec and waits for them itself (the init while it is set up,
// hook processes, namespace helpers). While such a call holds the reaper,
// it reaps only the pids it watches, each by its pid; what else exits
// waits, as a zombie, for the last hold's release, which reaps it all.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	exited  map[int]reaped
	order   []int // keys of exited, oldest first
	seq     uint64
	held    int // holds in progress
}

type reaped struct {
	ws  syscall.WaitStatus
	seq uint64
}

// maxUnclaimed bounds the exits kept for nobody: orphans of a container
// in the host's pid namespace could otherwise grow it without end.
const maxUnclaimed = 1024

// newReaper starts reaping on SIGCHLD. The caller must already be a
// subreaper, or orphans go to init.
func newReaper() *reaper {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}, exited: map[int]reaped{}}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			r.reap()
		}
	}()
	return r
}

// reap collects every exited child; a coalesced SIGCHLD stands for any
// number of them.
func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held > 0 {
		r.reapWatchedLocked()
		return
	}
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.seq++
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
			continue
		}
		if len(r.order) >= maxUnclaimed {
			old := r.order[0]
			r.order = r.order[1:]
			delete(r.exited, old)
		}
		if _, dup := r.exited[pid]; !dup {
			r.order = append(r.order, pid)
		}
		r.exited[pid] = reaped{ws: ws, seq: r.seq}
	}
}

// reapWatchedLocked collects the watched children that exited, by pid,
// leaving every other child to whoever waits for it.
func (r *reaper) reapWatchedLocked() {
	for pid, ch := range r.waiters {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		for err == syscall.EINTR {
			got, err = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
		if err != nil || got != pid {
			continue
		}
		r.seq++
		delete(r.waiters, pid)
		ch <- ws
	}
}

// hold keeps the reaper from reaping children it does not watch until the
// returned release is called.
func (r *reaper) hold() (release func()) {
	r.mu.Lock()
	r.held++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.held--
			r.mu.Unlock()
			// Children that exited meanwhile sent their SIGCHLD already.
			r.reap()
		})
	}
}

// Start starts cmd and returns a function waiting for its exit status; it
// implements runtimeclient.Starter. cmd must not need os/exec's Wait: its
// stdio must be nil or *os.File (no copying goroutines).
func (r *reaper) Start(cmd *exec.Cmd) (func() (int, error), error) {
	r.mu.Lock()
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[cmd.Process.Pid] = ch
	r.mu.Unlock()
	return func() (int, error) {
		ws := <-ch
		cmd.Process.Release()
		return runtimeclient.ExitStatus(ws), nil
	}, nil
}

// mark returns the current sequence number, for watch.
func (r *reaper) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// watch returns a channel that receives pid's wait status: at once when
// it was reaped after mark() returned since, else when it is.
func (r *reaper) watch(pid int, since uint64) <-chan syscall.WaitStatus {
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		if e.seq > since {
			ch <- e.ws
			return ch
		}
	}
	r.waiters[pid] = ch
	return ch
}

// signal sends sig to pid if it is a watched process not reaped yet. The
// lock keeps the reap loop from reaping it in between, so the signal
// cannot reach another process that took the pid.
func (r *reaper) signal(pid int, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; !ok {
		return syscall.ESRCH
	}
	return syscall.Kill(pid, sig)
}
