package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// threadNS are the namespaces a multi-threaded process may join with setns
// on one thread; children forked from that thread start in them.
var threadNS = map[specs.LinuxNamespaceType]bool{
	specs.NetworkNamespace: true, specs.IPCNamespace: true, specs.UTSNamespace: true,
	specs.PIDNamespace: true, specs.CgroupNamespace: true,
}

// nsFile is an opened namespace to join.
type nsFile struct {
	typ specs.LinuxNamespaceType
	f   *os.File
}

// spawnPlan says how the child enters its namespaces.
type spawnPlan struct {
	// thread: joined with setns on the spawning thread before the fork.
	thread []nsFile
	// constructor: passed as descriptors and joined by the nsenter
	// constructor of the child (user, mnt, time).
	constructor []nsFile
	// timeOffsets, when non-nil, asks for a new time namespace with these
	// offsets, for the child to be born in.
	timeOffsets map[string]specs.LinuxTimeOffset
}

func (p *spawnPlan) close() {
	for _, n := range append(p.thread, p.constructor...) {
		n.f.Close()
	}
}

// openJoin opens path as a namespace to join and files it where it can be
// joined.
func (p *spawnPlan) openJoin(typ specs.LinuxNamespaceType, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s namespace: %w", typ, err)
	}
	if threadNS[typ] {
		p.thread = append(p.thread, nsFile{typ, f})
	} else {
		p.constructor = append(p.constructor, nsFile{typ, f})
	}
	return nil
}

// start runs cmd.Start on a thread that first entered the plan's
// namespaces. That thread is never handed back to the Go scheduler: the
// goroutine exits still locked, and the runtime ends the thread, so no
// other goroutine ever runs in the container's namespaces.
func (p *spawnPlan) start(cmd *exec.Cmd) error {
	if p.timeOffsets != nil {
		return p.startInNewTime(cmd)
	}
	if len(p.thread) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- p.startLocked(cmd)
	}()
	return <-errc
}

func (p *spawnPlan) startLocked(cmd *exec.Cmd) error {
	for _, n := range p.thread {
		if err := unix.Setns(int(n.f.Fd()), int(nsTypes[n.typ].flag)); err != nil {
			return fmt.Errorf("join %s namespace: %w", n.typ, os.NewSyscallError("setns", err))
		}
	}
	return cmd.Start()
}

// startInNewTime starts cmd in a new time namespace with the plan's
// offsets. The child must be born in it: a process whose time namespace
// differs from the one for its children cannot create threads on older
// kernels, and execve does not move it there before Linux 6.x.
// unshare(CLONE_NEWTIME) changes the namespace for children of the calling
// thread only, while /proc/PID/timens_offsets speaks for the thread-group
// leader: so all of it happens on the main thread, which the runtime's main
// goroutine holds locked (internal/runtime/initproc's init). That thread is
// left in the new namespace; nothing forks from it afterwards but through
// runHooks, which uses another thread.
func (p *spawnPlan) startInNewTime(cmd *exec.Cmd) error {
	if unix.Gettid() != unix.Getpid() {
		return fmt.Errorf("a new time namespace can only be made from the runtime's main thread")
	}
	for _, n := range p.thread {
		if err := unix.Setns(int(n.f.Fd()), int(nsTypes[n.typ].flag)); err != nil {
			return fmt.Errorf("join %s namespace: %w", n.typ, os.NewSyscallError("setns", err))
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("new time namespace: %w", os.NewSyscallError("unshare", err))
	}
	var b strings.Builder
	for clock, off := range p.timeOffsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() > 0 {
		if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
			return fmt.Errorf("set time namespace offsets: %w", err)
		}
	}
	err := cmd.Start()
	if errors.Is(err, unix.EINVAL) {
		// Older kernels (6.1 does, 6.18 does not) refuse a clone that
		// shares memory into a new time namespace, which is how Go starts
		// processes.
		return fmt.Errorf("this kernel refuses to start the init in a new time namespace: %w", err)
	}
	return err
}
