package image

import (
	"errors"

	"github.com/berth-project/berth/internal/errdefs"

	"github.com/berth-project/berth/internal/registry"
)

func classify(class, err error) error { return errdefs.Classify(class, err) }

func invalidf(format string, args ...any) error { return errdefs.Invalidf(format, args...) }

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
