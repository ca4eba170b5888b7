package runtimeclient

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Kinds of runtime failure callers act on, matched with errors.Is.
var (
	ErrNotExist   = errors.New("container does not exist")
	ErrExist      = errors.New("container already exists")
	ErrNotRunning = errors.New("container is not running")
)

// Error is a runtime command that failed.
type Error struct {
	// Op is the runtime command ("create", "kill", ...).
	Op string
	// ID is the container, empty for list and version.
	ID string
	// Msg is the runtime's own message.
	Msg string
	// Status is the runtime's exit status; -1 when it did not run.
	Status int

	kind error
	err  error
}

func (e *Error) Error() string {
	if e.ID == "" {
		return "runtime " + e.Op + ": " + e.Msg
	}
	return "runtime " + e.Op + " " + e.ID + ": " + e.Msg
}

// Is reports the kind of failure: ErrNotExist, ErrExist or ErrNotRunning.
func (e *Error) Is(target error) bool {
	return e.kind != nil && target == e.kind
}

// Unwrap returns the cause when the runtime did not run or was cancelled
// (the context's error).
func (e *Error) Unwrap() error { return e.err }

// classify finds the kind of a failure of command op. Whether the
// container exists is best told by its state directory, which runc, crun
// and berth-runtime all keep at ROOT/ID; the messages are the fallback:
// runc and berth-runtime say "container does not exist", crun cannot open
// ROOT/ID/status. A failed create says nothing about existence beyond
// "already exists" (its other messages may well say "does not exist" of a
// bundle path).
func (r *Runtime) classify(op, id, msg string) error {
	m := strings.ToLower(msg)
	if op == "create" || op == "run" {
		if strings.Contains(m, "already exists") || strings.Contains(m, "exists already") {
			return ErrExist
		}
		return nil
	}
	if id != "" && r.Root != "" && !strings.ContainsRune(id, '/') {
		if _, err := os.Stat(filepath.Join(r.Root, id)); errors.Is(err, fs.ErrNotExist) {
			return ErrNotExist
		}
	} else if strings.Contains(m, "container does not exist") ||
		strings.Contains(m, "/status`: no such file or directory") {
		return ErrNotExist
	}
	switch {
	case strings.Contains(m, "not running"),
		strings.Contains(m, "is stopped"),
		strings.Contains(m, "process already finished"),
		strings.Contains(m, "no such process"):
		return ErrNotRunning
	}
	return nil
}
