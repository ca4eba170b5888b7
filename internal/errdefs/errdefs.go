package errdefs

import (
	"errors"
	"fmt"
)

// The classes, with the status docker answers each with.
var (
	ErrNotFound       = errors.New("not found")        // 404
	ErrInvalid        = errors.New("invalid argument") // 400
	ErrConflict       = errors.New("conflict")         // 409
	ErrUnauthorized   = errors.New("unauthorized")     // 401 (500 on pulls, as docker)
	ErrUnavailable    = errors.New("unavailable")      // 500 (a registry or peer that cannot be reached)
	ErrNotModified    = errors.New("not modified")     // 304 (start of a running container)
	ErrNotImplemented = errors.New("not implemented")  // 501
	ErrForbidden      = errors.New("forbidden")        // 403 (an operation on a predefined network)
)

// classified keeps an error's own message and adds its class.
type classified struct {
	class error
	err   error
}

func (e *classified) Error() string        { return e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.class }

// Classify gives err the class; nil stays nil.
func Classify(class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: class, err: err}
}

// NotFoundf, Invalidf and Conflictf format an error of their class.
func NotFoundf(format string, args ...any) error {
	return Classify(ErrNotFound, fmt.Errorf(format, args...))
}

func Invalidf(format string, args ...any) error {
	return Classify(ErrInvalid, fmt.Errorf(format, args...))
}

func Conflictf(format string, args ...any) error {
	return Classify(ErrConflict, fmt.Errorf(format, args...))
}

// Forbiddenf is an operation refused whatever the request says: docker's
// 403, for what berth defines itself (the predefined networks).
func Forbiddenf(format string, args ...any) error {
	return Classify(ErrForbidden, fmt.Errorf(format, args...))
}
