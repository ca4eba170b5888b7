package initproc

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	// The constructor that joins user, mount and time namespaces must be in
	// the binary this package runs in.
	_ "github.com/berth-project/berth/internal/linux/nsenter"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"golang.org/x/sys/unix"
)

func init() {
	// Runs before main: pins the main goroutine to the main thread for the
	// whole life of the process (see doc.go).
	runtime.LockOSThread()
}

// stepError names the set-up step that failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(name string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: name, err: err}
}

// envFD reads a descriptor number the parent passed in the environment.
func envFD(name string) (*os.File, error) {
	v := os.Getenv(name)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad %s=%q", name, v)
	}
	os.Unsetenv(name)
	// Nothing the runtime passes may survive into the user's program.
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}

// Main runs the init ("init") or an exec'd process ("exec-child"). It
// returns only on failure, with the exit status to use.
func Main(kind string) int {
	// No core dumps and no /proc/self access for anything in the container
	// while this process still is the runtime (CVE-2016-9962); execve
	// resets it for the user's program.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	sock, err := envFD("_BERTH_SYNCFD")
	if err != nil || sock == nil {
		fmt.Fprintf(os.Stderr, "berth-runtime %s: not started by the runtime (%v)\n", kind, err)
		return 1
	}
	report := func(err error) int {
		m := &syncmsg.Message{Type: syncmsg.TypeError, Message: err.Error()}
		if se, ok := err.(*stepError); ok {
			m.Step, m.Message = se.step, se.err.Error()
		}
		syncmsg.Write(sock, m)
		return 1
	}
	if err := syncmsg.CheckVersion(os.Getenv(syncmsg.VersionVar)); err != nil {
		return report(err)
	}
	os.Unsetenv(syncmsg.VersionVar)
	msg, err := syncmsg.Expect(sock, syncmsg.TypeConfig)
	if err != nil {
		// The parent is gone, or spoke out of turn: nothing to set up.
		return report(fmt.Errorf("receive config: %w", err))
	}
	cfg := msg.Config
	if cfg == nil || cfg.Spec == nil || cfg.Process == nil {
		return report(fmt.Errorf("receive config: incomplete"))
	}
	switch kind {
	case "init":
		return runInit(sock, cfg, report)
	case "exec-child":
		return report(runExec(sock, cfg))
	}
	return report(fmt.Errorf("unknown mode %q", kind))
}
