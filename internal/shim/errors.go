package shim

import (
	"errors"
	"fmt"
)

// Kinds of failure, matched with errors.Is on what Client methods return.
var (
	// ErrShimNotRunning: nothing serves the container's socket (the shim
	// exited or was killed), or the connection broke mid-request.
	ErrShimNotRunning = errors.New("container's shim is not running")
	// ErrNotRunning: the process has exited (or never started) and cannot
	// take a signal, an exec or a resize.
	ErrNotRunning = errors.New("process is not running")
	// ErrNotFound: no exec of that id.
	ErrNotFound = errors.New("no such exec")
	// ErrExists: an exec of that id exists already.
	ErrExists = errors.New("exec already exists")
	// ErrInvalid: a bad request (an exec id, a resize without a tty...).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the request does not fit the process's state (start
	// twice, delete while deleting...).
	ErrConflict = errors.New("conflict")
)

var kindNames = map[error]string{
	ErrNotRunning: "not-running",
	ErrNotFound:   "not-found",
	ErrExists:     "exists",
	ErrInvalid:    "invalid",
	ErrConflict:   "conflict",
}

// Error is a failure the shim reported: its message, and its kind for
// errors.Is.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

func errKind(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) error { return errKind(ErrInvalid, format, args...) }

// toWire turns a handler's error into the response's error.
func toWire(err error) *wireError {
	w := &wireError{Message: err.Error()}
	for kind, name := range kindNames {
		if errors.Is(err, kind) {
			w.Kind = name
			break
		}
	}
	return w
}

// fromWire turns a response's error back into an *Error.
func fromWire(w *wireError) error {
	e := &Error{Msg: w.Message}
	for kind, name := range kindNames {
		if w.Kind == name {
			e.Kind = kind
		}
	}
	return e
}
