package image

import (
	"errors"
	"fmt"

	"github.com/berth-project/berth/internal/registry"
)

// classified keeps an error's own message and adds the class the API maps
// to a status code (ErrNotFound, ErrUnauthorized, ...).
type classified struct {
	class error
	err   error
}

func (e *classified) Error() string        { return e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.class }

func classify(class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: class, err: err}
}

func invalidf(format string, args ...any) error {
	return classify(ErrInvalid, fmt.Errorf(format, args...))
}

// fromRegistry gives a registry error its image-store class.
func fromRegistry(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrNoMatchingPlatform):
		return classify(ErrNoPlatform, err)
	case errors.Is(err, registry.ErrNotFound):
		return classify(ErrNotFound, err)
	case errors.Is(err, registry.ErrUnauthorized):
		return classify(ErrUnauthorized, err)
	case errors.Is(err, registry.ErrUnreachable):
		return classify(ErrUnavailable, err)
	}
	return err
}
