package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/berth-project/berth/internal/linux/rootfs"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
)

// fsView is a container's file system as its processes see it (the root
// with its volumes and binds), for docker cp. Everything under it is
// reached from Root with openat2(RESOLVE_IN_ROOT): a symlink in the
// container, however it points, stays inside (CVE-2018-15664).
type fsView struct {
	Root     *os.File // O_PATH directory
	ReadOnly func(containerPath string) bool
	release  func()
}

func (v *fsView) Close() {
	v.Root.Close()
	if v.release != nil {
		v.release()
	}
}

// view opens a container's file system view. A running container's is
// its init's /proc/PID/root, checked to be the container's own process;
// a stopped one gets its root mounted, with its volumes and binds bound
// in a mount namespace of a thread of its own, which lives as long as
// the view.
func (e *Engine) view(ctx context.Context, c *ctr) (*fsView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ro := c.readOnlyFunc()
	if c.task != nil && c.rec.State.Pid > 0 {
		root, err := procRoot(c.rec.State.Pid, c.id)
		if err != nil {
			return nil, err
		}
		return &fsView{Root: root, ReadOnly: ro}, nil
	}
	if err := c.mountRootfs(ctx, e); err != nil {
		return nil, err
	}
	var binds []viewBind
	for _, mp := range c.rec.Mounts {
		if mp.Type == mount.TypeTmpfs {
			continue // a stopped container's tmpfs has no content
		}
		binds = append(binds, viewBind{source: mp.Source, dest: mp.Destination})
	}
	for _, f := range []struct{ name, dest string }{
		{hostnameFile, "/etc/hostname"}, {hostsFile, "/etc/hosts"}, {resolvFile, "/etc/resolv.conf"},
	} {
		binds = append(binds, viewBind{source: filepath.Join(c.dir, f.name), dest: f.dest})
	}
	return namespacedView(c.rootfs, binds, ro)
}

// readOnlyFunc tells which container paths cannot be written: those
// under a read-only mount, and the rest when the root is read-only.
// Callers hold c.mu.
func (c *ctr) readOnlyFunc() func(string) bool {
	type m struct {
		dest string
		rw   bool
	}
	var ms []m
	for _, mp := range c.rec.Mounts {
		ms = append(ms, m{mp.Destination, mp.RW})
	}
	rootRO := c.rec.HostConfig.ReadonlyRootfs
	return func(p string) bool {
		p = filepath.Clean("/" + p)
		best, rw := "", !rootRO
		for _, x := range ms {
			if (p == x.dest || strings.HasPrefix(p, x.dest+"/")) && len(x.dest) > len(best) {
				best, rw = x.dest, x.rw
			}
		}
		return !rw
	}
}

// procRoot opens /proc/PID/root of a container's init. The PID is pinned
// with a pidfd and checked to be in the container's cgroup before the
// root is opened, and alive after: a PID reused by another process is
// refused rather than copied into.
func procRoot(pid int, id string) (*os.File, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, conflictf("container %s: its process %d is gone: %v", id, pid, err)
	}
	defer unix.Close(pidfd)
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || !strings.Contains(string(cg), id) {
		return nil, conflictf("container %s: process %d is not the container's", id, pid)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: open its root: %w", id, err)
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		unix.Close(fd)
		return nil, conflictf("container %s: its process %d exited", id, pid)
	}
	return os.NewFile(uintptr(fd), "/"), nil
}

// viewBind is one mount a stopped container's view gets.
type viewBind struct{ source, dest string }

// namespacedView binds the mounts into rootDir in a new mount namespace
// of a dedicated thread, and returns the root opened there. The mounts
// stay private to that namespace (nothing propagates to the host); the
// thread waits until the view is closed and then exits with its
// namespace, which takes the mounts along.
func namespacedView(rootDir string, binds []viewBind, ro func(string) bool) (*fsView, error) {
	type result struct {
		root *os.File
		err  error
	}
	res := make(chan result, 1)
	done := make(chan struct{})
	work := func() {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			res <- result{err: os.NewSyscallError("unshare CLONE_NEWNS", err)}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			res <- result{err: os.NewSyscallError("make / rslave", err)}
			return
		}
		root, err := os.OpenFile(rootDir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			res <- result{err: err}
			return
		}
		for _, b := range binds {
			if err := bindIn(root, b); err != nil {
				root.Close()
				res <- result{err: err}
				return
			}
		}
		// The descriptor was opened in this namespace: lookups from it
		// cross the binds made here, from any thread.
		res <- result{root: root}
		<-done
	}
	go func() {
		// The thread leaves the host's mount namespace, so it is never
		// handed back to Go: the goroutine ends locked, and the thread
		// with it.
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work()
			return
		}
		// The main thread is never terminated (Go wedges it instead), and
		// /proc/self describes it: keep it here, locked and blocked, so
		// that the work runs on another thread.
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			runtime.LockOSThread()
			work()
		}()
		<-finished
		runtime.UnlockOSThread()
	}()
	r := <-res
	if r.err != nil {
		return nil, fmt.Errorf("container file system view: %w", r.err)
	}
	var once bool
	return &fsView{Root: r.root, ReadOnly: ro, release: func() {
		if !once {
			once = true
			close(done)
		}
	}}, nil
}

// bindIn binds b.source at b.dest inside root, the target made and
// opened within root (never through a symlink out of it) and mounted by
// descriptor.
func bindIn(root *os.File, b viewBind) error {
	fi, err := os.Stat(b.source)
	if err != nil {
		return err
	}
	target, err := rootfs.PrepareTarget(root, b.dest, fi.IsDir())
	if err != nil {
		return fmt.Errorf("mount point %s: %w", b.dest, err)
	}
	defer target.Close()
	src, err := os.OpenFile(b.source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := unix.Mount(fdPath(src), fdPath(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", b.source, b.dest, os.NewSyscallError("mount", err))
	}
	return nil
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }
