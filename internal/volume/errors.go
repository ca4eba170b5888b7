package volume

import "github.com/berth-project/berth/internal/errdefs"

// classify gives an error one of internal/errdefs' classes, which the API
// server maps to docker's status codes.
func classify(class, err error) error { return errdefs.Classify(class, err) }
