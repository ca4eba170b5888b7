package engine

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// The engine's errors carry internal/errdefs' classes, which the API
// server maps to docker's status codes with its one mapping: not found
// 404, invalid 400, conflict 409, not modified 304 (a start of a running
// container, a stop of a stopped one).

func classify(class, err error) error { return errdefs.Classify(class, err) }

func notFoundf(format string, args ...any) error { return errdefs.NotFoundf(format, args...) }

func invalidf(format string, args ...any) error { return errdefs.Invalidf(format, args...) }

func conflictf(format string, args ...any) error { return errdefs.Conflictf(format, args...) }

func notModified(format string, args ...any) error {
	return errdefs.Classify(errdefs.ErrNotModified, fmt.Errorf(format, args...))
}

// noSuchContainer is docker's 404 for a container reference.
func noSuchContainer(ref string) error {
	return notFoundf("No such container: %s", ref)
}
