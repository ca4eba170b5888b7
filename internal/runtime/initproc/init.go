package initproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/linux/rootfs"
	"github.com/berth-project/berth/internal/linux/sysctl"
	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runInit sets the container up, waits for `start`, and executes the
// user's program. It returns only on failure.
func runInit(sock *os.File, cfg *syncmsg.Config, report func(error) int) int {
	fifo, err := envFD("_BERTH_FIFOFD")
	if err != nil || fifo == nil {
		return report(fmt.Errorf("exec fifo: not passed (%v)", err))
	}
	consoleSock, err := envFD("_BERTH_CONSOLEFD")
	if err != nil {
		return report(err)
	}
	st, err := prepare(sock, cfg, consoleSock)
	if err != nil {
		return report(err)
	}
	// A trial open that cannot block: ENXIO (no reader yet) proves the
	// fifo can be opened for writing below, where no error can be reported
	// any more but through the fifo itself.
	fifoName := fmt.Sprintf("self/fd/%d", fifo.Fd())
	if w, err := openat(st.procfs, fifoName, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC); err == nil {
		w.Close()
	} else if !errors.Is(err, unix.ENXIO) {
		return report(step("open exec fifo", err))
	}
	if err := syncmsg.Write(sock, &syncmsg.Message{Type: syncmsg.TypeReady}); err != nil {
		return 1
	}
	sock.Close()

	// Block until `start` opens the fifo for reading. The O_PATH descriptor
	// is reopened through the init's private procfs: the container's /proc
	// may not exist, and the host's must not be held while the container
	// could reach it (CVE-2024-21626).
	w, err := openat(st.procfs, fifoName, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return 1
	}
	fifo.Close()
	st.procfs.Close()
	if _, err := w.Write([]byte{'0'}); err != nil {
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintf(w, "%v", err)
		w.Close()
		return 1
	}
	if h := cfg.Spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		state := &specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreated,
			Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations}
		if err := hooks.Run(context.Background(), hooks.StartContainer, h.StartContainer, state); err != nil {
			return fail(err)
		}
	}
	return fail(finalize(cfg, st.proc))
}

// initState carries what prepare hands to the steps after the fifo.
type initState struct {
	// procfs is a detached procfs of the init's own pid namespace, pid
	// directories only, for reopening descriptors through self/fd.
	procfs *os.File
	proc   *process
}

func openat(dir *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func hasNS(cfg *syncmsg.Config, t specs.LinuxNamespaceType) bool {
	for _, n := range cfg.NewNamespaces {
		if n == t {
			return true
		}
	}
	return false
}

// prepare does everything up to the wait on the exec fifo.
func prepare(sock *os.File, cfg *syncmsg.Config, consoleSock *os.File) (*initState, error) {
	spec := cfg.Spec
	procfs, err := privateProcfs()
	if err != nil {
		return nil, step("private procfs", err)
	}
	st := &initState{procfs: procfs}

	if hasNS(cfg, specs.CgroupNamespace) {
		// Now that the parent has placed us in our cgroup, its root is
		// the container's cgroup. Per thread: this thread execs.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return nil, step("new cgroup namespace", os.NewSyscallError("unshare", err))
		}
	}
	if spec.Process.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(fmt.Sprint(*spec.Process.OOMScoreAdj)), 0); err != nil {
			return nil, step("set oom_score_adj", err)
		}
	}

	var slave *os.File
	if hasNS(cfg, specs.MountNamespace) {
		slave, err = setupRootfs(sock, cfg, consoleSock)
		if err != nil {
			return nil, err
		}
	} else if cfg.Console {
		return nil, step("console", errors.New("a terminal needs the container's own mount namespace"))
	}

	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return nil, step("set hostname", os.NewSyscallError("sethostname", err))
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return nil, step("set domainname", os.NewSyscallError("setdomainname", err))
		}
	}
	if slave != nil {
		if err := console.SetupSlave(slave); err != nil {
			return nil, step("set up terminal", err)
		}
		slave.Close()
	} else if _, err := unix.Setsid(); err != nil {
		return nil, step("new session", os.NewSyscallError("setsid", err))
	}
	if !cfg.NoNewKeyring {
		// A session keyring of its own, so the container cannot read the
		// keys of the runtime's session. Kernels without keyrings, or a
		// seccomp profile that denies keyctl to the runtime, are fine.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil &&
			!errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
			return nil, step("join session keyring", os.NewSyscallError("keyctl", err))
		}
	}
	p, err := prepareProcess(cfg)
	if err != nil {
		return nil, err
	}
	st.proc = p
	return st, nil
}

// setupRootfs builds the container's filesystem and switches to it. It
// returns the pty slave when the process has a terminal.
func setupRootfs(sock *os.File, cfg *syncmsg.Config, consoleSock *os.File) (*os.File, error) {
	spec := cfg.Spec
	prop, err := rootfs.Propagation(spec.Linux.RootfsPropagation)
	if err != nil {
		return nil, step("rootfs propagation", err)
	}
	// Shared propagation is applied after pivot_root, which refuses a
	// shared new root or parent.
	early, late := prop, uintptr(0)
	if prop&(unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 {
		early, late = 0, prop
	}
	root, err := rootfs.PrepareRoot(cfg.Rootfs, early)
	if err != nil {
		return nil, step("prepare rootfs", err)
	}
	defer root.Close()

	m := &rootfs.Mounter{Root: root, Bundle: cfg.Bundle, Cgroup: cfg.Cgroup}
	m.Cgroup.Namespaced = hasNS(cfg, specs.CgroupNamespace)
	if hasNS(cfg, specs.UserNamespace) || userNamespaced() {
		m.InUserNS = true
		if ns, err := os.Open("/proc/self/ns/user"); err == nil {
			defer ns.Close()
			m.UserNS = ns
		}
	}
	devBound, ptsMounted := false, false
	if m.IDMaps, err = idmapFDs(); err != nil {
		return nil, step("idmapped mounts", err)
	}
	for i, mnt := range spec.Mounts {
		if err := m.Mount(i, mnt); err != nil {
			return nil, step("mount", err)
		}
		switch cleanPath(mnt.Destination) {
		case "/dev":
			if mnt.Type == "bind" || hasOpt(mnt.Options, "bind") || hasOpt(mnt.Options, "rbind") {
				devBound = true
			}
		case "/dev/pts":
			ptsMounted = true
		}
	}
	if !devBound {
		if err := m.CreateDevices(spec.Linux.Devices); err != nil {
			return nil, step("create devices", err)
		}
		if err := m.DevSymlinks(ptsMounted); err != nil {
			return nil, step("create /dev links", err)
		}
	}

	var slave *os.File
	if cfg.Console {
		slave, err = openConsole(m, root, consoleSock, cfg.Process.ConsoleSize)
		if err != nil {
			return nil, step("console", err)
		}
	}

	if h := spec.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime) > 0 {
		if err := syncmsg.Write(sock, &syncmsg.Message{Type: syncmsg.TypeHooks}); err != nil {
			return nil, step("hooks", err)
		}
		if _, err := syncmsg.Expect(sock, syncmsg.TypeHooksDone); err != nil {
			return nil, step("createRuntime hooks", err)
		}
	}
	if h := spec.Hooks; h != nil && len(h.CreateContainer) > 0 {
		state := &specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreating,
			Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: spec.Annotations}
		if err := hooks.Run(context.Background(), hooks.CreateContainer, h.CreateContainer, state); err != nil {
			return nil, step("createContainer hooks", err)
		}
	}

	if len(spec.Linux.Sysctl) > 0 {
		proc, err := rootfs.OpenProc(root)
		if err != nil {
			return nil, step("sysctl", err)
		}
		for k, v := range spec.Linux.Sysctl {
			if err := sysctl.Write(proc, k, v); err != nil {
				proc.Close()
				return nil, step("sysctl", err)
			}
		}
		proc.Close()
	}
	if len(spec.Linux.MaskedPaths) > 0 {
		null, err := rootfs.OpenDevNull()
		if err != nil {
			return nil, step("masked paths", err)
		}
		err = m.MaskPaths(spec.Linux.MaskedPaths, null)
		null.Close()
		if err != nil {
			return nil, step("masked paths", err)
		}
	}
	if err := m.ReadonlyPaths(spec.Linux.ReadonlyPaths); err != nil {
		return nil, step("read-only paths", err)
	}
	if err := prepareCwd(root, cfg.Process.Cwd); err != nil {
		return nil, step("working directory", err)
	}

	if cfg.NoPivot {
		err = rootfs.MoveRoot(root)
	} else {
		err = rootfs.PivotRoot(root)
	}
	if err != nil {
		return nil, step("switch root", err)
	}
	if err := rootfs.FinishRoot(spec.Root.Readonly, late); err != nil {
		return nil, step("finish root", err)
	}
	return slave, nil
}

// openConsole creates the pty in the container's own devpts, binds its
// slave over /dev/console and sends the master to the console socket.
func openConsole(m *rootfs.Mounter, root, sock *os.File, size *specs.Box) (*os.File, error) {
	if sock == nil {
		return nil, errors.New("no console socket")
	}
	ptmx, err := rootfs.OpenPtmx(root)
	if err != nil {
		return nil, err
	}
	defer ptmx.Close()
	master, slave, err := console.OpenPty(fmt.Sprintf("/proc/self/fd/%d", ptmx.Fd()))
	if err != nil {
		return nil, err
	}
	defer master.Close()
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := console.SetWinsize(int(master.Fd()), ws); err != nil {
			slave.Close()
			return nil, err
		}
	}
	if err := m.BindConsole(slave); err != nil {
		slave.Close()
		return nil, err
	}
	if err := console.SendFd(sock, "/dev/ptmx", master); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send pty master: %w", err)
	}
	sock.Close()
	return slave, nil
}

// prepareCwd creates the working directory inside the rootfs if it is
// missing, as runc does.
func prepareCwd(root *os.File, cwd string) error {
	f, err := rootfs.MkdirAllInRoot(root, cwd, 0o755)
	if err != nil {
		return err
	}
	return f.Close()
}

func userNamespaced() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

func cleanPath(p string) string {
	p = "/" + strings.Trim(p, "/")
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// idmapFDs collects the user namespaces the runtime made for idmapped
// mounts, passed as "index:fd,...".
func idmapFDs() (map[int]*os.File, error) {
	v := os.Getenv("_BERTH_IDMAPFDS")
	if v == "" {
		return nil, nil
	}
	os.Unsetenv("_BERTH_IDMAPFDS")
	out := map[int]*os.File{}
	for _, part := range strings.Split(v, ",") {
		var i, fd int
		if _, err := fmt.Sscanf(part, "%d:%d", &i, &fd); err != nil || fd < 3 {
			return nil, fmt.Errorf("bad _BERTH_IDMAPFDS entry %q", part)
		}
		unix.CloseOnExec(fd)
		out[i] = os.NewFile(uintptr(fd), "userns")
	}
	return out, nil
}

// privateProcfs makes a procfs instance for the init's pid namespace that is
// never attached anywhere (fsopen/fsmount) and shows pid directories only
// (subset=pid): through it the init reaches its own descriptors and nothing
// of the host.
func privateProcfs() (*os.File, error) {
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("fsopen", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "subset", "pid"); err != nil {
		return nil, os.NewSyscallError("fsconfig", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, os.NewSyscallError("fsconfig", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("fsmount", err)
	}
	return os.NewFile(uintptr(mfd), "procfs"), nil
}
