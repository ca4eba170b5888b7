package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/berth-project/berth/internal/linux/cgroups/systemd"
	consolesock "github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/linux/nsenter"
	"github.com/berth-project/berth/internal/linux/selfexe"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions are the exec command's inputs.
type ExecOptions struct {
	Process               *specs.Process
	PidFile               string
	ConsoleSocket         string
	ConsoleConn           *os.File
	PreserveFDs           int
	Stdin, Stdout, Stderr *os.File
}

// Exec starts a new process in every namespace and the cgroups of a
// running container, or of a created one (its init waits for start with
// every namespace and mount in place; runc execs there too). It returns
// once the process executed the program; the caller may wait on the
// returned process (a child of the caller).
func (c *Container) Exec(o *ExecOptions) (*os.Process, error) {
	if s := c.Status(); s != Running && s != Created {
		return nil, fmt.Errorf("%w: cannot exec in a %s container", ErrNotRunning, s)
	}
	p := o.Process
	if err := validateProcess(p); err != nil {
		return nil, err
	}
	if p.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, invalid("a terminal was asked for: a --console-socket is required")
	}

	var plan spawnPlan
	defer plan.close()
	pid := strconv.Itoa(c.st.InitPid)
	// Every namespace of the init, whether the container made it or joined
	// it; joining one the runtime is already in is harmless.
	for _, t := range nsOrder {
		if _, ok := nsTypes[t]; !ok {
			continue
		}
		path := "/proc/" + pid + "/ns/" + nsTypes[t].proc
		if _, err := os.Stat(path); err != nil {
			continue // kernel without this namespace type
		}
		same, err := sameNamespace(path, "/proc/self/ns/"+nsTypes[t].proc)
		if err != nil {
			return nil, err
		}
		if same {
			continue
		}
		if err := plan.openJoin(t, path); err != nil {
			return nil, err
		}
	}
	// The init might have died and its pid been reused between Status and
	// the opens above: check again, now that the descriptors are held.
	if !c.initAlive() {
		return nil, fmt.Errorf("%w: container %s exited", ErrNotRunning, c.st.ID)
	}

	parentSock, childSock, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()

	var console *os.File
	if p.Terminal {
		if o.ConsoleConn != nil {
			console = o.ConsoleConn
		} else if console, err = consolesock.ConnectSocket(o.ConsoleSocket); err != nil {
			return nil, err
		} else {
			defer console.Close()
		}
	}
	spec, err := c.spec()
	if err != nil {
		return nil, err
	}
	filter, listener, err := compileSeccomp(c.root, spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	if listener != nil {
		defer listener.Close()
	}
	exe, err := selfexe.Clone()
	if err != nil {
		return nil, err
	}
	defer exe.Close()

	stdin, stdout, stderr := o.Stdin, o.Stdout, o.Stderr
	if stdin == nil {
		stdin, stdout, stderr = os.Stdin, os.Stdout, os.Stderr
	}
	cmd := &exec.Cmd{
		Path:   selfexe.Path(exe),
		Args:   []string{"berth-runtime", "exec-child"},
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
	}
	for i := 0; i < o.PreserveFDs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i)))
	}
	addFD := func(f *os.File) int {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}
	// GOMAXPROCS: see startInit.
	cmd.Env = []string{"_BERTH_SYNCFD=" + strconv.Itoa(addFD(childSock)), syncmsg.VersionEnv()}
	if console != nil {
		cmd.Env = append(cmd.Env, "_BERTH_CONSOLEFD="+strconv.Itoa(addFD(console)))
	}
	if listener != nil {
		cmd.Env = append(cmd.Env, "_BERTH_SECCOMPFD="+strconv.Itoa(addFD(listener)))
	}
	if len(plan.constructor) > 0 {
		var joins []nsenter.Join
		for _, n := range plan.constructor {
			joins = append(joins, nsenter.Join{FD: addFD(n.f), Type: nsTypes[n.typ].proc})
		}
		cmd.Env = append(cmd.Env, nsenter.Env(joins))
	}

	if err := plan.start(cmd); err != nil {
		return nil, fmt.Errorf("start exec process: %w", err)
	}
	proc := cmd.Process
	childSock.Close()
	fail := func(err error) (*os.Process, error) {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	if len(c.st.CgroupPaths) > 0 {
		if err := systemd.Load(c.st.SystemdUnit, c.st.CgroupPaths).Apply(proc.Pid); err != nil {
			return fail(fmt.Errorf("place exec process in the container's cgroup: %w", err))
		}
	}
	stagePlan, err := execPlan(&stageInput{
		exec: true, id: c.st.ID, bundle: c.st.Bundle, spec: spec, process: p,
		preserveFDs: o.PreserveFDs, console: console != nil, pid: c.st.InitPid, seccomp: filter,
	})
	if err != nil {
		return fail(err)
	}
	if err := syncmsg.WriteFrame(parentSock, stagePlan); err != nil {
		return fail(c.initDied(proc, err))
	}
	if _, err := syncmsg.Expect(parentSock, syncmsg.TypeReady); err != nil {
		if _, ok := err.(*syncmsg.ChildError); ok {
			return fail(err)
		}
		return fail(c.initDied(proc, err))
	}
	// The child closes its end on execve; EOF confirms the exec, an error
	// message reports a failed one.
	if m, err := syncmsg.Read(parentSock); err == nil && m.Type == syncmsg.TypeError {
		return fail(&syncmsg.ChildError{Step: m.Step, Message: m.Message})
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return fail(err)
		}
	}
	return proc, nil
}

// sameNamespace compares two namespace files by device and inode.
func sameNamespace(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
