package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Kill sends sig to the container's init, or with all to every process of
// its cgroup.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	status := c.Status()
	if status == Stopped && !all {
		return fmt.Errorf("%w: container %s is not running", ErrNotRunning, c.st.ID)
	}
	if all {
		m, err := c.cgroups()
		if err != nil {
			return err
		}
		if err := m.Signal(sig); err != nil {
			return fmt.Errorf("signal every process of %s: %w", c.st.ID, err)
		}
	} else if err := c.signalInit(sig); err != nil {
		return err
	}
	// A frozen process acts on SIGKILL only once thawed: a paused
	// container that is killed must be able to die.
	if sig == unix.SIGKILL && status == Paused {
		if m, err := c.cgroups(); err == nil {
			if err := m.Thaw(); err != nil {
				return fmt.Errorf("thaw killed container %s: %w", c.st.ID, err)
			}
		}
	}
	return nil
}

// signalInit signals the init through a pidfd, which refers to exactly the
// process that was checked: a pid reused in between cannot be hit.
func (c *Container) signalInit(sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(c.st.InitPid, 0)
	if err != nil {
		return fmt.Errorf("%w: container %s is not running", ErrNotRunning, c.st.ID)
	}
	defer unix.Close(pidfd)
	if !c.initAlive() {
		return fmt.Errorf("%w: container %s is not running", ErrNotRunning, c.st.ID)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal container init: %w", os.NewSyscallError("pidfd_send_signal", err))
	}
	return nil
}

// Pause freezes every process of a running container.
func (c *Container) Pause() error {
	if s := c.Status(); s != Running {
		return fmt.Errorf("%w: cannot pause a %s container", ErrWrongState, s)
	}
	m, err := c.cgroups()
	if err != nil {
		return err
	}
	return m.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if s := c.Status(); s != Paused {
		return fmt.Errorf("%w: cannot resume a %s container", ErrWrongState, s)
	}
	m, err := c.cgroups()
	if err != nil {
		return err
	}
	return m.Thaw()
}
