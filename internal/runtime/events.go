package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-project/berth/internal/linux/cgroups"
)

// Event is one line of `events` output, in runc's shape.
type Event struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data *cgroups.Stats `json:"data,omitempty"`
}

// Stats samples the container's cgroup.
func (c *Container) Stats() (*Event, error) {
	m, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	st, err := m.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.st.ID, err)
	}
	return &Event{Type: "stats", ID: c.st.ID, Data: st}, nil
}

// Events sends stats every interval and an "oom" event whenever the
// kernel's OOM killer acts in the container's cgroup, until ctx ends or the
// container stops. The container's lock is not held meanwhile; the caller
// closes c before calling.
func (c *Container) Events(ctx context.Context, interval time.Duration, emit func(*Event) error) error {
	m, err := c.cgroups()
	if err != nil {
		return err
	}
	ooms, stop, err := m.OOMEvents()
	if err != nil {
		return fmt.Errorf("watch OOM events of %s: %w", c.st.ID, err)
	}
	defer stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ooms:
			if !ok {
				ooms = nil
				continue
			}
			if err := emit(&Event{Type: "oom", ID: c.st.ID}); err != nil {
				return err
			}
		case <-tick.C:
			if !c.initAlive() {
				return c.drainOOM(ooms, emit)
			}
			ev, err := c.Stats()
			if err != nil {
				// The container may have ended since the check above:
				// systemd removes a scope's cgroup as its last process
				// exits, under the reading of its files.
				if !c.initAlive() {
					return c.drainOOM(ooms, emit)
				}
				return err
			}
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
}

// oomDrain bounds how long Events waits, once the init is gone, for an OOM
// event still on its way.
const oomDrain = time.Second

// drainOOM emits the OOM events the watch still delivers after the init
// died. The kill that ended the container is often among them: the kernel
// tells the watch through a deferred notification, which can come after
// the init is seen dead. On cgroup2 the watch closes the channel once the
// cgroup is empty, after reporting the kill; elsewhere, or while other
// processes keep the cgroup populated, the wait ends after oomDrain.
func (c *Container) drainOOM(ooms <-chan struct{}, emit func(*Event) error) error {
	if ooms == nil {
		return nil
	}
	timeout := time.NewTimer(oomDrain)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-ooms:
			if !ok {
				return nil
			}
			if err := emit(&Event{Type: "oom", ID: c.st.ID}); err != nil {
				return err
			}
		case <-timeout.C:
			return nil
		}
	}
}
