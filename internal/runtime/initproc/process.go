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
}

// prepareProcess resolves what can fail before the container is reported
// ready: the program, the working directory, rlimits, capability names.
// Runs after the switch to the container's root.
func prepareProcess(p *specs.Process, create bool) (*process, error) {
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
	return &process{path: path, args: p.Args, env: env, caps: sets}, nil
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
