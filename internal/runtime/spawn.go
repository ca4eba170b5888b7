package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

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
