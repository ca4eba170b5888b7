package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// freezeTimeout bounds how long Freeze and Thaw wait for the kernel. A
// freeze normally completes in microseconds; a task stuck in an
// uninterruptible sleep (a hung NFS server) can hold it up indefinitely,
// and a pause that never returns is worse than one that fails.
const freezeTimeout = 5 * time.Second

// freezer is how a cgroup is frozen: the v1 freezer controller when the
// host binds it to a v1 hierarchy, else cgroup2's core cgroup.freeze
// (Linux 5.2+), which needs no controller.
type freezer struct {
	v1  string // freezer hierarchy directory, or ""
	v2  string // cgroup2 directory, when v1 is ""
	dir string // whichever is used, for messages
}

func (m *manager) freezer() (freezer, error) {
	if d := m.paths["freezer"]; d != "" {
		return freezer{v1: d, dir: d}, nil
	}
	if d := m.paths[""]; d != "" {
		if _, err := os.Stat(filepath.Join(d, "cgroup.freeze")); err == nil {
			return freezer{v2: d, dir: d}, nil
		}
	}
	return freezer{}, fmt.Errorf("freeze cgroup: no freezer on this host: %w", errors.ErrUnsupported)
}

func (m *manager) Freeze() error {
	fz, err := m.freezer()
	if err != nil {
		return err
	}
	if err := fz.set(true); err != nil {
		// Leave nothing half frozen behind a failed pause.
		_ = fz.set(false)
		return err
	}
	return nil
}

// Thaw of a cgroup that is gone succeeds: nothing in it is frozen. That
// happens when the last process of a frozen cgroup dies (cgroup2 delivers
// SIGKILL to frozen tasks) and systemd removes its scope's cgroup.
func (m *manager) Thaw() error {
	fz, err := m.freezer()
	if err != nil {
		if !m.Exists() {
			return nil
		}
		return err
	}
	if err := fz.set(false); err != nil && !gone(err) {
		return err
	}
	return nil
}

func (m *manager) Frozen() (bool, error) {
	fz, err := m.freezer()
	if err != nil {
		return false, nil
	}
	return fz.frozen()
}

func (fz freezer) frozen() (bool, error) {
	if fz.v1 != "" {
		s, err := readFile(filepath.Join(fz.v1, "freezer.state"))
		if err != nil {
			return false, fmt.Errorf("read freezer state: %w", err)
		}
		return s == "FROZEN", nil
	}
	ev, err := readFile(filepath.Join(fz.v2, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("read freezer state: %w", err)
	}
	for _, line := range strings.Split(ev, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "frozen" {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("read freezer state: no \"frozen\" key in %s", filepath.Join(fz.v2, "cgroup.events"))
}

// set asks for the frozen state want and polls until the kernel reports
// it. v1 freezing is asynchronous (freezer.state says FREEZING meanwhile)
// and the request is repeated on every poll, which re-kicks tasks that
// were forked or woke up since. cgroup2 reports completion in cgroup.events.
func (fz freezer) set(want bool) error {
	op := "thaw"
	if want {
		op = "freeze"
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	wrote := false
	for {
		if fz.v1 != "" || !wrote {
			if err := fz.write(want); err != nil {
				return fmt.Errorf("%s cgroup: %w", op, err)
			}
			wrote = true
		}
		got, err := fz.frozen()
		if err != nil {
			return fmt.Errorf("%s cgroup: %w", op, err)
		}
		if got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s cgroup %s: not done after %v", op, fz.dir, freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

func (fz freezer) write(frozen bool) error {
	if fz.v1 != "" {
		v := "THAWED"
		if frozen {
			v = "FROZEN"
		}
		return writeFile(filepath.Join(fz.v1, "freezer.state"), v)
	}
	v := "0"
	if frozen {
		v = "1"
	}
	return writeFile(filepath.Join(fz.v2, "cgroup.freeze"), v)
}
