package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/runtime"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execFailed is exec's status when the process could not be run, runc's
// 255: a caller (a probe, `docker exec`) tells it from the program's own
// status, of which 1 is common.
const execFailed = 255

func cmdExec(g *globals, args []string) error {
	err := execProcess(g, args)
	var ee *exitError
	var ue *usageError
	if err == nil || errors.As(err, &ee) || errors.As(err, &ue) {
		return err
	}
	return &statusError{code: execFailed, err: err}
}

func execProcess(g *globals, args []string) error {
	fs := flags("exec")
	var (
		consoleSocket, cwd, user, processFile, pidFile string
		env, caps, gids                                stringList
		tty, detach, noNewPrivs, ignorePaused          bool
		preserveFDs                                    int
		processLabel, apparmor, cgroup                 string
	)
	fs.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.StringVar(&cwd, "cwd", "", "working directory")
	fs.Var(&env, "env", "environment variable KEY=VALUE (repeatable)")
	fs.Var(&env, "e", "environment variable KEY=VALUE (repeatable)")
	fs.BoolVar(&tty, "tty", false, "allocate a pseudo-terminal")
	fs.BoolVar(&tty, "t", false, "allocate a pseudo-terminal")
	fs.StringVar(&user, "user", "", "UID[:GID]")
	fs.StringVar(&user, "u", "", "UID[:GID]")
	fs.Var(&gids, "additional-gids", "additional group id (repeatable)")
	fs.Var(&gids, "g", "additional group id (repeatable)")
	fs.StringVar(&processFile, "process", "", "process.json describing the process")
	fs.StringVar(&processFile, "p", "", "process.json describing the process")
	fs.BoolVar(&detach, "detach", false, "do not wait for the process")
	fs.BoolVar(&detach, "d", false, "do not wait for the process")
	fs.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
	fs.StringVar(&processLabel, "process-label", "", "SELinux label")
	fs.StringVar(&apparmor, "apparmor", "", "AppArmor profile")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.Var(&caps, "cap", "add a capability (repeatable)")
	fs.Var(&caps, "c", "add a capability (repeatable)")
	fs.IntVar(&preserveFDs, "preserve-fds", 0, "pass this many descriptors after stdio")
	fs.BoolVar(&ignorePaused, "ignore-paused", false, "accepted for compatibility")
	fs.StringVar(&cgroup, "cgroup", "", "sub-cgroup (not supported)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usagef("expected a container id")
	}
	id := fs.Arg(0)
	if cgroup != "" {
		return fmt.Errorf("exec --cgroup is not supported")
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	var p *specs.Process
	if processFile != "" {
		data, err := os.ReadFile(processFile)
		if err != nil {
			c.Close()
			return fmt.Errorf("read process file: %w", err)
		}
		p = new(specs.Process)
		if err := json.Unmarshal(data, p); err != nil {
			c.Close()
			return fmt.Errorf("parse process file %s: %w", processFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			c.Close()
			return usagef("expected a command to run, or --process")
		}
		spec, err := c.Spec()
		if err != nil {
			c.Close()
			return err
		}
		p = processFromContainer(spec)
		p.Args = fs.Args()[1:]
		p.Terminal = tty
	}
	if err := overrideProcess(p, env, cwd, user, gids, caps, noNewPrivs, processLabel, apparmor); err != nil {
		c.Close()
		return usagef("%v", err)
	}

	o := &runtime.ExecOptions{Process: p, PidFile: pidFile, ConsoleSocket: consoleSocket, PreserveFDs: preserveFDs}
	var ownConsole *os.File
	if p.Terminal && consoleSocket == "" {
		if detach {
			c.Close()
			return usagef("a terminal for a detached process needs --console-socket")
		}
		parent, child, err := console.NewSocketPair()
		if err != nil {
			c.Close()
			return err
		}
		defer parent.Close()
		o.ConsoleConn, ownConsole = child, parent
		if p.ConsoleSize == nil {
			p.ConsoleSize = userConsoleSize()
		}
	}
	sigs := make(chan os.Signal, 64)
	if !detach {
		signal.Notify(sigs, forwarded...)
		defer signal.Stop(sigs)
	}
	proc, err := c.Exec(o)
	if o.ConsoleConn != nil {
		o.ConsoleConn.Close()
	}
	c.Close()
	if err != nil {
		return err
	}
	if detach {
		proc.Release()
		return nil
	}
	var master *os.File
	if ownConsole != nil {
		if master, err = console.RecvFd(ownConsole); err != nil {
			proc.Kill()
			return fmt.Errorf("receive pty master: %w", err)
		}
		defer master.Close()
	}
	return &exitError{code: waitExec(proc, master, sigs)}
}

// waitExec forwards signals to the exec'd process and waits for it.
func waitExec(proc *os.Process, master *os.File, sigs chan os.Signal) int {
	proxyDone := make(chan struct{})
	if master != nil {
		if console.IsTerminal(int(os.Stdin.Fd())) {
			if restore, err := console.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer restore()
			}
		}
		go func() {
			console.Proxy(context.Background(), master, os.Stdin, os.Stdout)
			close(proxyDone)
		}()
	} else {
		close(proxyDone)
	}
	done := make(chan int, 1)
	go func() { done <- waitStatus(proc) }()
	for {
		select {
		case code := <-done:
			<-proxyDone
			return code
		case s := <-sigs:
			if sig, ok := s.(unix.Signal); ok && sig != unix.SIGCHLD && sig != unix.SIGURG && sig != unix.SIGWINCH && sig != unix.SIGPIPE {
				proc.Signal(sig)
			}
		}
	}
}

// processFromContainer starts from the container's own process, as runc
// exec does: same user, capabilities, rlimits, environment.
func processFromContainer(spec *specs.Spec) *specs.Process {
	data, _ := json.Marshal(spec.Process)
	var p specs.Process
	json.Unmarshal(data, &p)
	p.Terminal = false
	p.ConsoleSize = nil
	return &p
}

func overrideProcess(p *specs.Process, env []string, cwd, user string, gids, caps []string, nnp bool, label, apparmor string) error {
	p.Env = append(p.Env, env...)
	if cwd != "" {
		p.Cwd = cwd
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if user != "" {
		uidS, gidS, hasGid := strings.Cut(user, ":")
		uid, err := strconv.ParseUint(uidS, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: the uid must be a number", user)
		}
		p.User.UID = uint32(uid)
		if hasGid {
			gid, err := strconv.ParseUint(gidS, 10, 32)
			if err != nil {
				return fmt.Errorf("--user %q: the gid must be a number", user)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range gids {
		gid, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return fmt.Errorf("--additional-gids %q: not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	if len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range caps {
			c = strings.ToUpper(c)
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
			// Ambient too where the process has an inheritable set,
			// as runc adds it: the kernel raises an ambient
			// capability only if it is inheritable as well.
			if p.Capabilities.Inheritable != nil {
				p.Capabilities.Ambient = append(p.Capabilities.Ambient, c)
			}
		}
	}
	if nnp {
		p.NoNewPrivileges = true
	}
	if label != "" {
		p.SelinuxLabel = label
	}
	if apparmor != "" {
		p.ApparmorProfile = apparmor
	}
	return nil
}
