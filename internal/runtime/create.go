package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/internal/linux/cgroups/systemd"
	consolesock "github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/linux/nsenter"
	"github.com/berth-project/berth/internal/linux/selfexe"
	"github.com/berth-project/berth/internal/linux/userns"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOptions are the create command's inputs.
type CreateOptions struct {
	Root   string
	ID     string
	Bundle string
	// Spec, when set, is the bundle's config.json already read by the
	// caller; otherwise Create reads it.
	Spec *specs.Spec
	// SpecJSON, when set, is the JSON Spec was decoded from, unchanged
	// since: the state keeps it as it is instead of encoding Spec again
	// (building encoding/json's encoders for the spec's hundreds of types
	// is a real part of a create's time).
	SpecJSON []byte
	// PidFile, when set, receives the init's host pid.
	PidFile string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when the process has a terminal. ConsoleConn, when set, is an
	// already connected socket used instead (run in the foreground).
	ConsoleSocket string
	ConsoleConn   *os.File
	NoPivot       bool
	NoNewKeyring  bool
	// PreserveFDs passes descriptors 3 .. 3+PreserveFDs-1 to the process.
	PreserveFDs   int
	SystemdCgroup bool
	// Stdio of the init; the caller's own when nil.
	Stdin, Stdout, Stderr *os.File
	// Warn receives what the host cannot honour but the container does
	// without (a resource field the kernel lacks).
	Warn func(string)
	// Binary is the runtime binary the init (and a namespace stage) is
	// started from, sealed like the running one (selfexe.CloneFile); empty
	// means the running binary. berth-shim, which runs Create as a library,
	// names berth-runtime here.
	Binary string
}

func (o *CreateOptions) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// LoadSpec reads and decodes bundle/config.json. It also returns the
// file's bytes, for CreateOptions.SpecJSON.
func LoadSpec(bundle string) (*specs.Spec, []byte, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, invalid("read bundle config: %v", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, nil, invalid("parse %s: %v", path, err)
	}
	return &spec, data, nil
}

// Create makes a container in the created state: its init is waiting in
// the container for `start`. The returned process is the init, a child of
// the caller, for `run` to wait on.
func Create(o *CreateOptions) (c *Container, init *os.Process, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, invalid("bundle %s: %v", o.Bundle, err)
	}
	spec, specJSON := o.Spec, o.SpecJSON
	if spec == nil {
		if spec, specJSON, err = LoadSpec(bundle); err != nil {
			return nil, nil, err
		}
	}
	if err := Validate(spec, bundle); err != nil {
		return nil, nil, err
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, nil, invalid("process.terminal is true: a --console-socket is required")
	}
	if !spec.Process.Terminal && (o.ConsoleSocket != "" || o.ConsoleConn != nil) {
		return nil, nil, invalid("--console-socket given but process.terminal is false")
	}
	mgr, err := systemd.New(spec.Linux.CgroupsPath, o.ID, o.SystemdCgroup)
	if err != nil {
		return nil, nil, err
	}

	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create state root: %w", err)
	}
	dir := filepath.Join(o.Root, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("%w: container with id %q", ErrExist, o.ID)
		}
		return nil, nil, fmt.Errorf("create state directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	rootfsPath := spec.Root.Path
	if !filepath.IsAbs(rootfsPath) {
		rootfsPath = filepath.Join(bundle, rootfsPath)
	}
	c = &Container{root: o.Root, dir: dir, lock: lock, specJSON: specJSON, st: stored{
		ID: o.ID, Bundle: bundle, Rootfs: rootfsPath, Created: time.Now().UTC(),
		Owner: "", Spec: spec, CgroupPaths: mgr.Paths(), SystemdUnit: systemd.UnitName(mgr),
	}}

	var proc *os.Process
	defer func() {
		if err == nil {
			return
		}
		if proc != nil {
			proc.Kill()
			proc.Wait()
		}
		if derr := mgr.Destroy(); derr != nil {
			err = fmt.Errorf("%w (and clean-up: %v)", err, derr)
		}
		os.RemoveAll(dir)
		lock.Close()
		c = nil
	}()

	proc, err = c.startInit(o, spec, mgr)
	if err != nil {
		return nil, nil, err
	}
	start, _, err := procStat(proc.Pid)
	if err != nil {
		return nil, nil, fmt.Errorf("read init start time: %w", err)
	}
	c.st.InitPid, c.st.InitStart = proc.Pid, start
	if err := c.save(); err != nil {
		return nil, nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return nil, nil, err
		}
	}
	return c, proc, nil
}

// startInit spawns the init and drives it until it waits on the fifo.
func (c *Container) startInit(o *CreateOptions, spec *specs.Spec, mgr cgroups.Manager) (*os.Process, error) {
	fifoPath := filepath.Join(c.dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", &os.PathError{Op: "mkfifo", Path: fifoPath, Err: err})
	}
	// Writable by the init whatever uid it has in its user namespace; only
	// root can reach it, through the 0700 state directory, and the init
	// reopens it through its descriptor.
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	parentSock, childSock, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()

	var console *os.File
	if spec.Process.Terminal {
		if o.ConsoleConn != nil {
			console = o.ConsoleConn
		} else {
			console, err = consolesock.ConnectSocket(o.ConsoleSocket)
			if err != nil {
				return nil, err
			}
			defer console.Close()
		}
	}

	filter, listener, err := compileSeccomp(o.Root, spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	if listener != nil {
		defer listener.Close()
	}

	var exe *os.File
	if o.Binary != "" {
		exe, err = selfexe.CloneFile(o.Binary)
	} else {
		exe, err = selfexe.Clone()
	}
	if err != nil {
		return nil, err
	}
	defer exe.Close()

	var plan spawnPlan
	defer plan.close()
	var cloneflags uintptr
	var newNS []specs.LinuxNamespaceType
	newTime := false
	for _, n := range spec.Linux.Namespaces {
		if n.Path != "" {
			if err := plan.openJoin(n.Type, n.Path); err != nil {
				return nil, err
			}
			continue
		}
		newNS = append(newNS, n.Type)
		switch n.Type {
		case specs.CgroupNamespace:
			// Made by the init itself once it sits in its cgroup, so that the
			// namespace's root is the container's cgroup.
		case specs.TimeNamespace:
			// Made with its offsets by the nsenter constructor of the init
			// (or of the stage that clones it), see below.
			newTime = true
		default:
			cloneflags |= nsTypes[n.Type].flag
		}
	}

	stdin, stdout, stderr := o.Stdin, o.Stdout, o.Stderr
	if stdin == nil {
		stdin, stdout, stderr = os.Stdin, os.Stdout, os.Stderr
	}
	cmd := &exec.Cmd{
		Path:   selfexe.Path(exe),
		Args:   []string{"berth-runtime", "init"},
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneflags,
		},
	}
	for i := 0; i < o.PreserveFDs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i)))
	}
	addFD := func(f *os.File) int {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}
	syncFD := addFD(childSock)
	// The stage's environment only: the user's program gets the spec's.
	cmd.Env = []string{
		"_BERTH_SYNCFD=" + strconv.Itoa(syncFD),
		"_BERTH_FIFOFD=" + strconv.Itoa(addFD(fifo)),
		syncmsg.VersionEnv(),
	}
	if console != nil {
		cmd.Env = append(cmd.Env, "_BERTH_CONSOLEFD="+strconv.Itoa(addFD(console)))
	}
	if listener != nil {
		cmd.Env = append(cmd.Env, "_BERTH_SECCOMPFD="+strconv.Itoa(addFD(listener)))
	}
	// Idmapped mounts with maps of their own need a user namespace each,
	// made here: the init's pid namespace hides the helper from the
	// host's /proc its maps are written through.
	idmaps := map[int]int{}
	for i, m := range spec.Mounts {
		if len(m.UIDMappings)+len(m.GIDMappings) == 0 {
			continue
		}
		ns, err := userns.New(m.UIDMappings, m.GIDMappings)
		if err != nil {
			return nil, fmt.Errorf("user namespace for idmapped mount %s: %w", m.Destination, err)
		}
		defer ns.Close()
		idmaps[i] = addFD(ns)
	}
	if len(plan.constructor) > 0 {
		var joins []nsenter.Join
		for _, t := range nsOrder {
			for _, n := range plan.constructor {
				if n.typ == t {
					joins = append(joins, nsenter.Join{FD: addFD(n.f), Type: nsTypes[t].proc})
				}
			}
		}
		cmd.Env = append(cmd.Env, nsenter.Env(joins))
	}
	if newTime {
		offsets := make(map[string]nsenter.Offset, len(spec.Linux.TimeOffsets))
		for clock, o := range spec.Linux.TimeOffsets {
			offsets[clock] = nsenter.Offset{Secs: o.Secs, Nanosecs: o.Nanosecs}
		}
		env, err := nsenter.NewTimeEnv(offsets)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		cmd.Env = append(cmd.Env, env)
	}
	if cloneflags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = idMaps(spec.Linux.UIDMappings)
		cmd.SysProcAttr.GidMappings = idMaps(spec.Linux.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Become the namespace's root once the maps are written: the kernel
		// grants a user namespace's capabilities across execve only to its
		// root, and the runtime's own uid 0 is usually unmapped in it.
		if mapsRoot(spec.Linux.UIDMappings) && mapsRoot(spec.Linux.GIDMappings) {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
		}
	}

	var proc *os.Process
	if joinsUser(plan) && cloneflags != 0 {
		proc, err = startViaStage(&plan, cmd)
	} else {
		err = plan.start(cmd)
		proc = cmd.Process
	}
	// The parent's copies must go, or EOF never comes when the init dies.
	childSock.Close()
	if err != nil {
		// The nsenter constructor reports a failed join on the sync socket.
		if m, rerr := syncmsg.Read(parentSock); rerr == nil && m.Type == syncmsg.TypeError {
			err = &syncmsg.ChildError{Step: m.Step, Message: m.Message}
		}
		return nil, fmt.Errorf("start container init: %w", err)
	}

	fail := func(err error) (*os.Process, error) {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	if err := mgr.Apply(proc.Pid); err != nil {
		return fail(fmt.Errorf("place init in its cgroup: %w", err))
	}
	// systemd decides where a unit's cgroup is; what it reports wins.
	c.st.CgroupPaths = mgr.Paths()

	view, err := cgroupView(mgr)
	if err != nil {
		return fail(err)
	}
	in := &stageInput{
		id: c.st.ID, bundle: c.st.Bundle, rootfs: c.st.Rootfs, spec: spec, process: spec.Process,
		noPivot: o.NoPivot, noNewKeyring: o.NoNewKeyring, preserveFDs: o.PreserveFDs,
		newNS: newNS, userNS: cloneflags&unix.CLONE_NEWUSER != 0 || joinsUser(plan) || inUserNS(),
		cgroup: view, console: console != nil, pid: proc.Pid, nsPid: proc.Pid,
		seccomp: filter, idmapFDs: idmaps, warn: o.warn,
	}
	in.cgroup.Namespaced = in.hasNS(specs.CgroupNamespace)
	if h := spec.Hooks; h != nil && len(h.CreateContainer)+len(h.StartContainer) > 0 {
		// Those hooks run in the container and get its view of the pid.
		if in.nsPid, err = nsPid(proc.Pid); err != nil {
			return fail(fmt.Errorf("container init: %w", err))
		}
	}
	stagePlan, err := initPlan(in)
	if err != nil {
		return fail(err)
	}
	if err := syncmsg.WriteFrame(parentSock, stagePlan); err != nil {
		return fail(c.initDied(proc, err))
	}
	for {
		m, err := syncmsg.Read(parentSock)
		if err != nil {
			return fail(c.initDied(proc, err))
		}
		switch m.Type {
		case syncmsg.TypeHooks:
			if err := c.runCreateHooks(spec, proc.Pid); err != nil {
				return fail(err)
			}
			if err := syncmsg.Write(parentSock, &syncmsg.Message{Type: syncmsg.TypeHooksDone}); err != nil {
				return fail(c.initDied(proc, err))
			}
		case syncmsg.TypeReady:
			// Limits go on once the init has built the rootfs (its mknod of
			// the spec's devices must not meet the container's device
			// rules) and before it runs the user's program, which waits
			// for start.
			warnings, err := mgr.Set(cgroupResources(spec))
			for _, w := range warnings {
				o.warn(w)
			}
			if err != nil {
				return fail(fmt.Errorf("set resources: %w", err))
			}
			return proc, nil
		case syncmsg.TypeError:
			return fail(fmt.Errorf("container init: %w", &syncmsg.ChildError{Step: m.Step, Message: m.Message}))
		default:
			return fail(fmt.Errorf("container init: unexpected %q message", m.Type))
		}
	}
}

// runHooks runs hooks in the runtime's own namespaces.
func runHooks(kind string, hs []specs.Hook, st *specs.State) error {
	return hooks.Run(context.Background(), kind, hs, st)
}

// joinsUser reports whether the plan joins an existing user namespace.
func joinsUser(p spawnPlan) bool {
	for _, n := range p.constructor {
		if n.typ == specs.UserNamespace {
			return true
		}
	}
	return false
}

// initDied explains a broken sync socket: usually the init exited.
func (c *Container) initDied(proc *os.Process, cause error) error {
	if !errors.Is(cause, io.EOF) && !errors.Is(cause, unix.EPIPE) && !errors.Is(cause, unix.ECONNRESET) {
		return fmt.Errorf("container init: %w", cause)
	}
	state, err := proc.Wait()
	if err != nil {
		return fmt.Errorf("container init exited unexpectedly")
	}
	return fmt.Errorf("container init exited unexpectedly: %s", state)
}

// runCreateHooks runs prestart and createRuntime hooks in the runtime's
// namespaces, while the init waits before pivot_root.
func (c *Container) runCreateHooks(spec *specs.Spec, pid int) error {
	if spec.Hooks == nil {
		return nil
	}
	// The state is saved only once the init is ready; the hooks need its
	// pid now.
	st := c.hookState(Creating)
	st.Pid = pid
	if err := runHooks("prestart", spec.Hooks.Prestart, st); err != nil {
		return err
	}
	return runHooks("createRuntime", spec.Hooks.CreateRuntime, st)
}

func mapsRoot(ms []specs.LinuxIDMapping) bool {
	for _, m := range ms {
		if m.ContainerID == 0 {
			return true
		}
	}
	return false
}

func idMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(ms))
	for _, m := range ms {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// socketPair returns the two ends of the sync socket, close-on-exec.
func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sync socket: %w", os.NewSyscallError("socketpair", err))
	}
	// The runtime's end is non-blocking, so os.File waits on it in the Go
	// runtime's poller: a read blocked in the kernel instead would have the
	// scheduler hand its P to another thread and back while the child works.
	// The child's end stays blocking, as the stage reads it.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("sync socket: %w", os.NewSyscallError("fcntl", err))
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// writePidFile writes pid atomically, as containerd and podman read it
// while the runtime may still be writing.
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}
