package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/internal/linux/console"
	"golang.org/x/sys/unix"
)

// A container that joins an existing user namespace and creates other
// namespaces needs those namespaces owned by the joined user namespace
// (mounting its proc, for one, needs that). Namespaces are owned by the user
// namespace of the process that creates them, and a Go process cannot join
// a user namespace once it runs. So a stage process is started first: its
// nsenter constructor joins the user namespace (and any mount or time
// namespace given by path), and it clones the init with the new namespaces
// and CLONE_PARENT, which makes the init the runtime's own child. The stage
// sends back a pidfd of the init, which names it in the runtime's pid
// namespace whatever namespace the stage sees it from, and exits.
//
//	runtime ──spawn──> stage (joins userns) ──clone(CLONE_PARENT|new ns)──> init
//	   ^                  │                                                  │
//	   └── pidfd over the stage socket ┘   init is the runtime's child  <────┘

const (
	stageFDEnv    = "_BERTH_STAGEFD"
	stageFlagsEnv = "_BERTH_STAGE_CLONEFLAGS"
	stageMaxFDEnv = "_BERTH_STAGE_MAXFD"
)

// startViaStage starts cmd's init through a stage process.
// Preconditions: cmd is fully built for a direct start, with the stage's
// joins in its nsenter environment.
func startViaStage(plan *spawnPlan, cmd *exec.Cmd) (*os.Process, error) {
	parent, child, err := console.NewSocketPair()
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	defer child.Close()

	flags := cmd.SysProcAttr.Cloneflags
	stage := &exec.Cmd{
		Path:        cmd.Path,
		Args:        []string{"berth-runtime", "stage"},
		Stdin:       cmd.Stdin,
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		ExtraFiles:  append(append([]*os.File(nil), cmd.ExtraFiles...), child),
		SysProcAttr: &syscall.SysProcAttr{},
	}
	stageFD := 2 + len(stage.ExtraFiles)
	stage.Env = append(append([]string(nil), cmd.Env...),
		stageFDEnv+"="+strconv.Itoa(stageFD),
		stageFlagsEnv+"="+strconv.FormatUint(uint64(flags), 10),
		stageMaxFDEnv+"="+strconv.Itoa(stageFD-1),
	)
	if err := plan.start(stage); err != nil {
		return nil, fmt.Errorf("start namespace stage: %w", err)
	}
	child.Close()
	pidfd, recvErr := console.RecvFd(parent)
	state, waitErr := stage.Process.Wait()
	if recvErr != nil {
		if waitErr == nil && !state.Success() {
			return nil, fmt.Errorf("namespace stage failed: %s", state)
		}
		return nil, fmt.Errorf("namespace stage: %w", recvErr)
	}
	defer pidfd.Close()
	pid, err := pidfdPid(pidfd)
	if err != nil {
		return nil, err
	}
	// The init is this process's child (CLONE_PARENT): Wait works on it.
	return os.FindProcess(pid)
}

// pidfdPid reads the pid a pidfd refers to, in this process's namespace.
func pidfdPid(f *os.File) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", f.Fd()))
	if err != nil {
		return 0, fmt.Errorf("read pidfd info: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("init is not visible from the runtime's pid namespace")
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("pidfd info has no Pid line")
}

// StageMain is the stage process: already in the joined namespaces, it
// clones the init and reports it. It returns the exit status.
func StageMain() int {
	fd, err := strconv.Atoi(os.Getenv(stageFDEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime stage: not started by the runtime")
		return 1
	}
	sock := os.NewFile(uintptr(fd), "stage")
	unix.CloseOnExec(fd)
	flags, err := strconv.ParseUint(os.Getenv(stageFlagsEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime stage: bad clone flags")
		return 1
	}
	maxFD, err := strconv.Atoi(os.Getenv(stageMaxFDEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-runtime stage: bad descriptor count")
		return 1
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "_BERTH_STAGE") {
			env = append(env, e)
		}
	}
	pidfd := -1
	cmd := &exec.Cmd{
		Path:   "/proc/self/exe", // the sealed memfd this stage runs from
		Args:   []string{"berth-runtime", "init"},
		Env:    env,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: uintptr(flags) | unix.CLONE_PARENT,
			PidFD:      &pidfd,
			// The joined namespace's root keeps its capabilities across
			// the init's execve; the runtime's uid is unmapped there.
			Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		},
	}
	for i := 3; i <= maxFD; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(i), "fd"+strconv.Itoa(i)))
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime stage: start init: %v\n", err)
		return 1
	}
	if pidfd < 0 {
		fmt.Fprintln(os.Stderr, "berth-runtime stage: kernel gave no pidfd")
		cmd.Process.Kill()
		return 1
	}
	if err := console.SendFd(sock, "init", os.NewFile(uintptr(pidfd), "pidfd")); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime stage: send init pidfd: %v\n", err)
		cmd.Process.Kill()
		return 1
	}
	return 0
}
