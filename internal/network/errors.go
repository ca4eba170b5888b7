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
	// forbiddenf is docker's 403: create, remove and the like of a
	// predefined network (bridge, host, none).
	forbiddenf = errdefs.Forbiddenf
)

// noSuchNetwork is docker's 404 for a network reference.
func noSuchNetwork(ref string) error {
	return notFoundf("network %s not found", ref)
}
