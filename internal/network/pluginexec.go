package network

import (
	"context"
	"os"
	"runtime"

	"github.com/containernetworking/cni/pkg/invoke"
	"golang.org/x/sys/unix"
)

// backgroundNice is the nice value of the work no caller waits for (a
// pool entry's namespace and ADD, the DEL of one a container left): on a
// host with few CPUs it must not slow down the container start that runs
// beside it. 19 weighs 15 against a normal process's 1024 (10 weighs
// 110, and measurably slowed the start it ran beside); SCHED_IDLE would
// starve it on a host that is never idle.
const backgroundNice = 19

type backgroundKey struct{}

// inBackground marks ctx as work no caller waits for: its plugins run
// at backgroundNice.
func inBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// pluginExec runs the CNI plugins as libcni's default does, those of
// background work at a lower priority.
type pluginExec struct {
	invoke.DefaultExec
}

func newPluginExec() *pluginExec {
	return &pluginExec{invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}}
}

// ExecPlugin runs the plugin. In the background, the fork happens on a
// thread whose nice value is raised first, so the plugin (and the IPAM
// plugin it runs) inherits it from its start; the thread is never given
// back to the Go scheduler (it ends with its goroutine), so nothing else
// of berthd runs at that priority.
func (x *pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	// One P: the plugins are short-lived Go programs (and the bridge
	// plugin executes host-local with the same environment), and a P
	// per CPU is start-up work and threads taken from the containers
	// starting beside them (bench/engine-net.sh: bridge/none 1.55 ->
	// 1.40 with the pool's background work at one P).
	environ = append(environ[:len(environ):len(environ)], "GOMAXPROCS=1")
	if ctx.Value(backgroundKey{}) == nil {
		return x.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		lowerThreadPriority()
		out, err := x.DefaultExec.ExecPlugin(ctx, pluginPath, stdinData, environ)
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

// lowerThreadPriority puts the calling thread, which must be locked and
// never unlocked, and the processes it forks at backgroundNice. Best
// effort: work at the normal priority is only slower for the rest.
func lowerThreadPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), backgroundNice)
}
