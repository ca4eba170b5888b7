package runtime

import "errors"

// Error kinds, mapped to exit codes and messages once, by the CLI.
var (
	ErrNotExist     = errors.New("container does not exist")
	ErrExist        = errors.New("container already exists")
	ErrInvalid      = errors.New("invalid argument")
	ErrNotRunning   = errors.New("container is not running")
	ErrWrongState   = errors.New("container is in the wrong state")
	ErrNotSupported = errors.New("not supported")
)
