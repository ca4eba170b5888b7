package network

import (
	"github.com/berth-project/berth/internal/errdefs"
)

// The classes are errdefs', so that the API server maps this package's
// errors to docker's status codes with the mapping it has.
var (
	notFoundf = errdefs.NotFoundf
	invalidf  = errdefs.Invalidf
	conflictf = errdefs.Conflictf
)

// noSuchNetwork is docker's 404 for a network reference.
func noSuchNetwork(ref string) error {
	return notFoundf("network %s not found", ref)
}
