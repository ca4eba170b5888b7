package runtime

import "errors"

// Error kinds, mapped to exit codes and messages once, by the CLI.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container already exists")
	ErrInvalid  = errors.New("invalid argument")
	// ErrNotRunning's text is runc's: scripts look for it.
	ErrNotRunning   = errors.New("container not running")
	ErrWrongState   = errors.New("container is in the wrong state")
	ErrNotSupported = errors.New("not supported")
)
