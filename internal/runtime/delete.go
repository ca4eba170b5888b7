package runtime

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Delete removes a container. A created or stopped container goes at once;
// a running or paused one only with force, which kills every process of it
// first. Poststop hooks run last; their failures are warnings (returned
// after the container is gone, wrapped as such).
func (c *Container) Delete(force bool) error {
	status := c.Status()
	switch status {
	case Stopped, Created:
	case Running, Paused:
		if !force {
			return fmt.Errorf("%w: cannot delete container %s that is not stopped: %s (use --force)", ErrWrongState, c.st.ID, status)
		}
	}
	if err := c.killAll(status); err != nil {
		return err
	}
	if m, err := c.cgroups(); err == nil {
		if err := m.Destroy(); err != nil {
			return fmt.Errorf("remove cgroups of %s: %w", c.st.ID, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove state of %s: %w", c.st.ID, err)
	}
	c.Close()
	if h := c.specMeta().Hooks; status != Created && h != nil && len(h.Poststop) > 0 {
		if err := runHooks("poststop", h.Poststop, c.hookState(Stopped)); err != nil {
			return &Warning{Err: err}
		}
	}
	return nil
}

// Warning is an error that did not stop the operation.
type Warning struct{ Err error }

func (w *Warning) Error() string { return "warning: " + w.Err.Error() }
func (w *Warning) Unwrap() error { return w.Err }

// killAll makes sure no process of the container is left: the init, and
// every process of its cgroup (with a shared pid namespace, or when the
// init died and left orphans behind, the cgroup is the only record).
func (c *Container) killAll(status Status) error {
	if status != Stopped {
		// An error means the init raced us to its exit: fine.
		_ = c.signalInit(unix.SIGKILL)
	}
	m, err := c.cgroups()
	if err != nil {
		return nil
	}
	if status == Paused {
		// Frozen processes die of SIGKILL only once thawed.
		if err := m.Thaw(); err != nil {
			return fmt.Errorf("thaw %s: %w", c.st.ID, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			break
		}
		if err := m.Signal(unix.SIGKILL); err != nil {
			return fmt.Errorf("kill processes of %s: %w", c.st.ID, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of %s survive SIGKILL: %v", c.st.ID, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The init may linger as a zombie until its parent reaps it; wait for
	// it to be gone from the cgroup's view (above) and record the exit.
	c.st.Stopped = true
	return nil
}
