package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// OOMEvents tells when the cgroup runs out of memory, for the runtime's
// `events` command. Each receive on the channel is one notification: on
// v1, that the memory cgroup hit its limit and invoked the OOM killer
// (memory.oom_control through cgroup.event_control and an eventfd); on
// cgroup2, that memory.events' oom_kill counter grew, one receive per
// process killed (the file is watched with inotify, which cgroupfs signals
// on every change).
//
// The channel is closed when the watch ends: on stop; when the cgroup is
// removed; on cgroup2 also when its last process exits (cgroup.events
// "populated" drops to 0), since an empty cgroup runs out of nothing. An
// OOM kill that empties the cgroup is reported before the close.
//
// The watch holds descriptors and a goroutine until stop is called, which
// every caller must do; stop waits for the goroutine and may be called
// more than once.
func (m *manager) OOMEvents() (<-chan struct{}, func(), error) {
	dir, unified, ok := m.dirFor("memory", "memory")
	if !ok {
		return nil, nil, fmt.Errorf("watch oom events: no memory controller for this cgroup: %w", errors.ErrUnsupported)
	}
	if unified {
		return watchOOMV2(dir)
	}
	return watchOOMV1(dir)
}

// oomWatch is the state shared by the watching goroutine and stop.
type oomWatch struct {
	ch    chan struct{}
	done  chan struct{}
	files []*os.File
	once  sync.Once
	wg    sync.WaitGroup
}

func newOOMWatch(files ...*os.File) *oomWatch {
	return &oomWatch{ch: make(chan struct{}), done: make(chan struct{}), files: files}
}

// run starts loop in a goroutine; the channel closes when loop returns.
func (w *oomWatch) run(loop func()) (<-chan struct{}, func(), error) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(w.ch)
		loop()
	}()
	return w.ch, w.stop, nil
}

// stop ends the watch. Closing the files wakes the goroutine from its
// read: they are non-blocking descriptors on Go's poller.
func (w *oomWatch) stop() {
	w.once.Do(func() {
		close(w.done)
		for _, f := range w.files {
			f.Close()
		}
	})
	w.wg.Wait()
}

// send delivers one event, or reports false when stopped meanwhile.
func (w *oomWatch) send() bool {
	select {
	case w.ch <- struct{}{}:
		return true
	case <-w.done:
		return false
	}
}

func watchOOMV1(dir string) (<-chan struct{}, func(), error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, nil, fmt.Errorf("watch oom events: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, nil, fmt.Errorf("watch oom events: %w", os.NewSyscallError("eventfd", err))
	}
	ev := os.NewFile(uintptr(efd), "eventfd")
	// "<eventfd> <control file fd>" registers the eventfd for the
	// control file's event (cgroup-v1/memory.rst, "Memory thresholds"
	// and "OOM Control").
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(ctl.Fd()))
	if err := writeFile(filepath.Join(dir, "cgroup.event_control"), reg); err != nil {
		ev.Close()
		ctl.Close()
		return nil, nil, fmt.Errorf("watch oom events: %w", err)
	}
	w := newOOMWatch(ev, ctl)
	return w.run(func() {
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// The kernel also signals the eventfd when it removes the
			// cgroup, to end the registration.
			if _, err := os.Stat(filepath.Join(dir, "memory.oom_control")); err != nil {
				return
			}
			if !w.send() {
				return
			}
		}
	})
}

func watchOOMV2(dir string) (<-chan struct{}, func(), error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, fmt.Errorf("watch oom events: %w", os.NewSyscallError("inotify_init1", err))
	}
	in := os.NewFile(uintptr(ifd), "inotify")
	// The control files change on every event. The cgroup's removal is
	// told only to its parent directory (IN_DELETE from rmdir): cgroupfs
	// reports nothing on the removed files, nor IN_DELETE_SELF on the
	// directory, whose link count it never drops. The parent's other
	// removals wake the watch for nothing; it reads the files and goes on.
	for _, w := range []struct {
		path string
		mask uint32
	}{
		{filepath.Join(dir, "memory.events"), unix.IN_MODIFY},
		{filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY},
		{filepath.Dir(dir), unix.IN_DELETE | unix.IN_ONLYDIR},
	} {
		p := w.path
		if _, err := unix.InotifyAddWatch(ifd, p, w.mask); err != nil {
			in.Close()
			return nil, nil, fmt.Errorf("watch oom events: %w", &os.PathError{Op: "inotify_add_watch", Path: p, Err: err})
		}
	}
	// Read the counter after the watch is in place, so that no kill falls
	// between the two.
	last, err := oomKills(dir)
	if err != nil {
		in.Close()
		return nil, nil, fmt.Errorf("watch oom events: %w", err)
	}
	wasPopulated, _ := populated(dir)
	w := newOOMWatch(in)
	return w.run(func() {
		buf := make([]byte, 4096)
		for {
			if _, err := in.Read(buf); err != nil {
				return
			}
			// Which file changed matters little: read both, the counter
			// first, so that a kill emptying the cgroup is reported.
			n, err := oomKills(dir)
			if err != nil {
				return // removed
			}
			for ; last < n; last++ {
				if !w.send() {
					return
				}
			}
			p, err := populated(dir)
			if err != nil {
				return
			}
			if !p && wasPopulated {
				return
			}
			wasPopulated = wasPopulated || p
		}
	})
}

func oomKills(dir string) (uint64, error) {
	s, err := readFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return 0, err
	}
	return parseFlatKeyed(s)["oom_kill"], nil
}

func populated(dir string) (bool, error) {
	s, err := readFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "populated" {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("no \"populated\" in %s", filepath.Join(dir, "cgroup.events"))
}
