package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/runtime"
	"golang.org/x/sys/unix"
)

// parseSignal accepts "SIGTERM", "TERM", "term" and "15"; and 0, which
// signals nothing and says whether the container is there to signal, as
// kill(2)'s and runc's 0 does.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func cmdKill(g *globals, args []string) error {
	fs := flags("kill")
	var all bool
	fs.BoolVar(&all, "all", false, "send the signal to every process of the container")
	fs.BoolVar(&all, "a", false, "send the signal to every process of the container")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usagef("expected a container id and an optional signal")
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		var err error
		if sig, err = parseSignal(fs.Arg(1)); err != nil {
			return usagef("%v", err)
		}
	}
	c, err := runtime.Load(g.root, fs.Arg(0))
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Kill(sig, all)
}

func cmdDelete(g *globals, args []string) error {
	fs := flags("delete")
	var force bool
	fs.BoolVar(&force, "force", false, "kill a running container first")
	fs.BoolVar(&force, "f", false, "kill a running container first")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("expected at least one container id")
	}
	var errs []error
	for _, id := range fs.Args() {
		c, err := runtime.Load(g.root, id)
		if err != nil {
			// runc: deleting a container that does not exist succeeds with
			// --force, so clean-up scripts can be repeated.
			if force && errors.Is(err, runtime.ErrNotExist) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		if err := c.Delete(force); err != nil {
			errs = append(errs, err)
		}
		c.Close()
	}
	return errors.Join(errs...)
}

func cmdPause(g *globals, args []string) error {
	return freeze(g, "pause", args, true)
}

func cmdResume(g *globals, args []string) error {
	return freeze(g, "resume", args, false)
}

func freeze(g *globals, name string, args []string, pause bool) error {
	fs := flags(name)
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	c, err := runtime.Load(g.root, id)
	if err != nil {
		return err
	}
	defer c.Close()
	if pause {
		return c.Pause()
	}
	return c.Resume()
}
