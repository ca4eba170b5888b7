package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (f *createFlags) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
}) {
	fs.StringVar(&f.bundle, "bundle", ".", "path to the bundle")
	fs.StringVar(&f.bundle, "b", ".", "path to the bundle")
	fs.StringVar(&f.pidFile, "pid-file", "", "write the init's pid to this file")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	fs.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many descriptors after stdio to the container")
}

func (f *createFlags) options(g *globals, id string) *runtime.CreateOptions {
	return &runtime.CreateOptions{
		Root: g.root, ID: id, Bundle: f.bundle, PidFile: f.pidFile, ConsoleSocket: f.consoleSocket,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFDs: f.preserveFDs,
		SystemdCgroup: g.systemdCgroup,
		Warn:          func(msg string) { g.logger.warnf("%s", msg) },
	}
}

func cmdCreate(g *globals, args []string) error {
	var f createFlags
	fs := flags("create")
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	c, _, err := runtime.Create(f.options(g, id))
	if err != nil {
		return err
	}
	return c.Close()
}

func cmdStart(g *globals, args []string) error {
	fs := flags("start")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Start()
}

func cmdRun(g *globals, args []string) error {
	var f createFlags
	fs := flags("run")
	f.register(fs)
	var detach, keep bool
	fs.BoolVar(&detach, "detach", false, "do not wait for the container")
	fs.BoolVar(&detach, "d", false, "do not wait for the container")
	fs.BoolVar(&keep, "keep", false, "keep the container after it exits")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	o := f.options(g, id)
	spec, specJSON, err := runtime.LoadSpec(o.Bundle)
	if err != nil {
		return err
	}
	o.Spec, o.SpecJSON = spec, specJSON
	var ownConsole *os.File
	if spec.Process != nil && spec.Process.Terminal && o.ConsoleSocket == "" {
		if detach {
			return usagef("a terminal for a detached container needs --console-socket")
		}
		parent, child, err := console.NewSocketPair()
		if err != nil {
			return err
		}
		defer parent.Close()
		o.ConsoleConn, ownConsole = child, parent
		if spec.Process.ConsoleSize == nil {
			spec.Process.ConsoleSize = userConsoleSize()
			o.SpecJSON = nil // no longer what spec says
		}
	}
	// Signals that arrive from now on go to the container once it runs.
	// Asking for them costs a round trip to the Go runtime's signal-mask
	// thread per signal, so it happens while Create waits on the
	// container's init, and is complete before the container starts.
	sigs := make(chan os.Signal, 64)
	notified := make(chan struct{})
	if !detach {
		go func() {
			signal.Notify(sigs, forwarded...)
			close(notified)
		}()
		defer func() {
			<-notified
			signal.Stop(sigs)
		}()
	} else {
		close(notified)
	}
	c, init, err := runtime.Create(o)
	if o.ConsoleConn != nil {
		o.ConsoleConn.Close()
	}
	if err != nil {
		return err
	}
	var master *os.File
	if ownConsole != nil {
		if master, err = console.RecvFd(ownConsole); err != nil {
			c.Delete(true)
			return fmt.Errorf("receive pty master: %w", err)
		}
		defer master.Close()
	}
	<-notified
	if err := c.Start(); err != nil {
		c.Delete(true)
		return err
	}
	if detach {
		return c.Close()
	}
	// The lock must not be held while the container runs: other commands
	// (kill, exec, state) need it.
	c.Close()
	status := waitForeground(g, id, init, master, sigs)
	if !keep {
		if c, err := runtime.Load(g.root, id); err == nil {
			if err := c.Delete(true); err != nil {
				var w *runtime.Warning
				if !errors.As(err, &w) {
					g.logger.errorf("run: delete after exit: %v", err)
				}
			}
		}
	}
	return &exitError{code: status}
}

// userConsoleSize returns the window size of the user's terminal (stdin,
// else stdout), nil when neither is one. A process whose terminal the
// runtime proxies gets it as its consoleSize: the init sets it on the pty
// before the program starts, while the proxy, which follows the user's
// window from then on, starts only after the program may have read it.
func userConsoleSize() *specs.Box {
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if ws, err := console.GetWinsize(int(f.Fd())); err == nil && ws.Row > 0 && ws.Col > 0 {
			return &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
		}
	}
	return nil
}

// forwarded are the signals a foreground run or exec passes on to the
// container; SIGWINCH is handled by the terminal proxy, SIGCHLD, SIGPIPE
// and SIGURG are the runtime's own.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGVTALRM,
	unix.SIGPROF, unix.SIGIO, unix.SIGPWR, unix.SIGSYS, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGTRAP,
}

// waitForeground forwards signals to the container (and its terminal's
// size), proxies its terminal if it has one, and returns its exit status.
func waitForeground(g *globals, id string, init *os.Process, master *os.File, sigs chan os.Signal) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxyDone := make(chan struct{})
	if master != nil {
		if console.IsTerminal(int(os.Stdin.Fd())) {
			if restore, err := console.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer restore()
			}
		}
		go func() {
			console.Proxy(ctx, master, os.Stdin, os.Stdout)
			close(proxyDone)
		}()
	} else {
		close(proxyDone)
	}
	done := make(chan int, 1)
	go func() { done <- waitStatus(init) }()
	for {
		select {
		case code := <-done:
			// Let the terminal's last output through before returning.
			<-proxyDone
			return code
		case s := <-sigs:
			sig, ok := s.(unix.Signal)
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGWINCH || sig == unix.SIGPIPE {
				continue
			}
			if c, err := runtime.Load(g.root, id); err == nil {
				c.Kill(sig, false)
				c.Close()
			}
		}
	}
}

// waitStatus waits for p and returns its status the way a shell reports it.
func waitStatus(p *os.Process) int {
	runtime.WaitExited(p.Pid)
	st, err := p.Wait()
	if err != nil {
		return 255
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
