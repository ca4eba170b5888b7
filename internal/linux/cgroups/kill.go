package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Signal implements kill --all.
//
// With SIGKILL and a cgroup2 directory that has cgroup.kill (Linux 5.14+),
// one write kills the whole subtree in the kernel, forks included. On a
// hybrid host this is sound too: Apply placed the processes on cgroup2 as
// on every v1 hierarchy, and children inherit all of them.
//
// Otherwise the cgroup is frozen, every listed process signalled, and the
// cgroup thawed: a frozen process cannot fork, so none escapes between the
// listing and the kill. Signals sent to frozen tasks are delivered on thaw
// (a cgroup2-frozen task dies of SIGKILL at once). When the cgroup cannot
// be frozen (no freezer, or a task stuck in D state) the processes are
// signalled anyway, as runc does: a best-effort kill beats none.
func (m *manager) Signal(sig unix.Signal) error {
	if sig == unix.SIGKILL {
		if d := m.paths[""]; d != "" {
			p := filepath.Join(d, "cgroup.kill")
			if _, err := os.Stat(p); err == nil {
				if err := writeFile(p, "1"); err != nil && !gone(err) {
					return fmt.Errorf("kill cgroup: %w", err)
				}
				return nil
			}
		}
	}
	frozen := m.Freeze() == nil
	pids, err := m.Pids()
	if err == nil {
		for _, p := range pids {
			if kerr := unix.Kill(p, sig); kerr != nil && !errors.Is(kerr, unix.ESRCH) {
				err = fmt.Errorf("signal pid %d: %w", p, kerr)
				break
			}
		}
	}
	if frozen {
		if terr := m.Thaw(); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	if err != nil && !gone(err) {
		return fmt.Errorf("signal cgroup with %v: %w", sig, err)
	}
	return nil
}

// gone reports whether err says the cgroup's directory went away while it
// was being signalled: then no process is left in it to signal. systemd
// removes a scope's cgroup as soon as its last process exits, so a kill
// --all or delete --force racing with the container's end meets this:
// ENOENT when the directory went before a control file was opened,
// ENODEV (kernfs) when it went between the open and the write.
// (Control files never vanish from a cgroup that exists.)
func gone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV)
}
