package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/linux/procattr"
	"github.com/berth-project/berth/internal/linux/rlimit"
	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// process is the user's program, resolved and ready to execute.
type process struct {
	path string
	args []string
	env  []string
	caps caps.Sets
	// seccomp is the filter to load last, with the connection to its
	// listener and the state the listener receives when it notifies.
	seccomp      *seccomp.Filter
	listener     *os.File
	seccompState []byte
}

// prepareProcess resolves what can fail before the container is reported
// ready: the program, the working directory, rlimits, capability names.
// Runs after the switch to the container's root.
func prepareProcess(cfg *syncmsg.Config) (*process, error) {
	p := cfg.Process
	if err := unix.Chdir(p.Cwd); err != nil {
		return nil, step("chdir to "+p.Cwd, os.NewSyscallError("chdir", err))
	}
	if err := rlimit.Apply(p.Rlimits); err != nil {
		return nil, step("set rlimits", err)
	}
	last, err := caps.LastCap()
	if err != nil {
		return nil, step("capabilities", err)
	}
	sets, _, err := caps.FromSpec(p.Capabilities, last)
	if err != nil {
		return nil, step("capabilities", err)
	}
	env := p.Env
	if !hasEnv(env, "HOME") {
		env = append(append([]string(nil), env...), "HOME="+homeDir(p.User.UID))
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return nil, step("find program", err)
	}
	proc := &process{path: path, args: p.Args, env: env, caps: sets}
	if err := proc.prepareSeccomp(cfg); err != nil {
		return nil, err
	}
	return proc, nil
}

// prepareSeccomp decodes the runtime's compiled filter and, for a notifying
// one, readies the listener's connection and message, so that nothing has
// to allocate or open files once the filter is loaded.
func (proc *process) prepareSeccomp(cfg *syncmsg.Config) error {
	if cfg.Seccomp == nil {
		return nil
	}
	f, err := cfg.Seccomp.Filter()
	if err != nil {
		return step("seccomp", err)
	}
	proc.seccomp = f
	if !f.Notify() {
		return nil
	}
	conn, err := envFD("_BERTH_SECCOMPFD")
	if err != nil || conn == nil {
		return step("seccomp", fmt.Errorf("no connection to the seccomp listener (%v)", err))
	}
	proc.listener = conn
	st := specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreated,
		Pid: cfg.InitPid, Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations}
	if cfg.Exec {
		st.Status = specs.StateRunning
	}
	meta := ""
	if cfg.Spec.Linux.Seccomp != nil {
		meta = cfg.Spec.Linux.Seccomp.ListenerMetadata
	}
	proc.seccompState, err = seccomp.ProcessState(st, cfg.InitPid, meta)
	if err != nil {
		return step("seccomp", err)
	}
	return nil
}

// loadSeccomp installs the filter and hands a notify listener to the agent.
func (proc *process) loadSeccomp() error {
	if proc.seccomp == nil {
		return nil
	}
	fd, err := proc.seccomp.Load()
	if err != nil {
		return step("seccomp", err)
	}
	if fd < 0 {
		return nil
	}
	err = seccomp.SendNotify(proc.listener, fd, proc.seccompState)
	unix.Close(fd)
	proc.listener.Close()
	if err != nil {
		return step("seccomp", fmt.Errorf("send notify descriptor to the listener: %w", err))
	}
	return nil
}

// finalize drops to the user's identity and privileges and executes the
// program. It returns only on failure.
func finalize(cfg *syncmsg.Config, proc *process) error {
	p := cfg.Process
	if err := procattr.Personality(cfg.Spec.Linux.Personality); err != nil {
		return step("personality", err)
	}
	if err := procattr.IOPriority(p.IOPriority); err != nil {
		return step("ioPriority", err)
	}
	if err := procattr.Scheduler(p.Scheduler); err != nil {
		return step("scheduler", err)
	}
	if err := procattr.MemoryPolicy(cfg.Spec.Linux.MemoryPolicy); err != nil {
		return step("memory policy", err)
	}
	// Before any seccomp filter, which may refuse rt_sigaction or prctl.
	resetSignals()
	// The host's transparent huge page policy for the program: a
	// berth-shim that runs the runtime in-process disables THP for its
	// own memory (cmd/berth-shim/thp.go), and the flag is inherited by
	// forks and kept across execve.
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 0, 0, 0, 0); err != nil {
		return step("transparent huge pages", os.NewSyscallError("prctl", err))
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it
	// while the capabilities are still there, as runc does. The rest of the
	// set-up then runs under the filter.
	if !p.NoNewPrivileges {
		if err := proc.loadSeccomp(); err != nil {
			return err
		}
	}
	// The bounding set first: dropping needs CAP_SETPCAP, which the user
	// switch may take away.
	if err := caps.DropBounding(proc.caps.Bounding); err != nil {
		return step("drop bounding capabilities", err)
	}
	if err := caps.SwitchUser(p.User.UID, p.User.GID, p.User.AdditionalGids, setgroupsAllowed()); err != nil {
		return step("switch user", err)
	}
	if err := caps.Apply(proc.caps); err != nil {
		return step("set capabilities", err)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return step("set no_new_privs", os.NewSyscallError("prctl", err))
		}
		// As late as possible: only execve of the program follows.
		if err := proc.loadSeccomp(); err != nil {
			return err
		}
	}
	if cfg.Exec && p.ExecCPUAffinity != nil {
		if err := procattr.Affinity(p.ExecCPUAffinity.Final); err != nil {
			return step("exec CPU affinity", err)
		}
	}
	if err := closeExtraFDs(3 + cfg.PreserveFDs); err != nil {
		return step("close descriptors", err)
	}
	err := syscall.Exec(proc.path, proc.args, proc.env)
	return step("exec "+proc.path, err)
}

// closeExtraFDs marks every descriptor from first on close-on-exec, so the
// program starts with stdio and the preserved descriptors only: a leaked
// descriptor of the host's filesystem is a way out of the container
// (CVE-2024-21626).
func closeExtraFDs(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

func setgroupsAllowed() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err != nil || strings.TrimSpace(string(data)) != "deny"
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// homeDir looks uid up in the container's /etc/passwd, as runc does when
// the spec sets no HOME.
func homeDir(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	want := strconv.FormatUint(uint64(uid), 10)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) >= 6 && fields[2] == want && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}

// lookPath finds the program the way execvp would, with the container's
// PATH, so a missing binary fails at create with a clear message.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("%q: %w", name, err)
		}
		return name, nil
	}
	path := ""
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in $PATH", name)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file or directory")
		}
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}
