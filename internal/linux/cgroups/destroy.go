package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Destroy removes every directory of the cgroup, children first.
//
// cgroupfs directories are removed with rmdir(2) even though they list
// control files; unlinking those files fails, which is why os.RemoveAll
// cannot be used. rmdir fails with EBUSY while the cgroup has processes;
// a process that was just killed lingers for a few milliseconds while the
// kernel tears it down, so EBUSY is retried for about half a second in
// all (not per hierarchy) before giving up. Destroy does not kill
// anything: callers signal first (Signal(SIGKILL)).
func (m *manager) Destroy() error {
	pending := m.dirs()
	delay := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var busy []string
		var errs []error
		for _, d := range pending {
			err := removeTree(d)
			switch {
			case err == nil:
			case errors.Is(err, unix.EBUSY):
				busy = append(busy, d)
				errs = append(errs, err)
			default:
				errs = append(errs, err)
			}
		}
		// Only EBUSY is worth another try.
		if len(busy) == 0 || len(busy) < len(errs) || attempt == 7 {
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("destroy cgroup: %w", err)
			}
			return nil
		}
		pending = busy
		time.Sleep(delay)
		delay = min(2*delay, 160*time.Millisecond)
	}
}

// removeTree removes dir and the cgroups below it, deepest first. A
// directory already gone is success, so a retry after a partial removal
// (or a second Destroy) picks up where the last one stopped.
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
	}
}
