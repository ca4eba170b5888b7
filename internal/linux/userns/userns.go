package userns

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
)

const holdEnv = "_BERTH_USERNS_HOLD"

// Hold turns the process into a namespace holder when it was started by
// New: it waits for its stdin to close and exits. Otherwise it returns.
func Hold() {
	if os.Getenv(holdEnv) != "1" {
		return
	}
	var b [1]byte
	os.Stdin.Read(b[:])
	os.Exit(0)
}

// New returns a descriptor of a new user namespace with the given maps.
func New(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{holdEnv + "=1"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("user namespace holder: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                convert(uids),
		GidMappings:                convert(gids),
		GidMappingsEnableSetgroups: false,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace holder: %w", err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	// The maps are written before Start returns: the child waits for them
	// before it executes anything.
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("open user namespace: %w", err)
	}
	return f, nil
}

func convert(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(ms))
	for _, m := range ms {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}
