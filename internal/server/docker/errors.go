package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// httpError is an error of this package with its status decided.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil && e.msg == "" {
		return e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

// badRequest is a 400 for a malformed request; the message names the
// parameter at fault.
func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// statusOf is the one mapping from errors to HTTP status codes.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, image.ErrNoPlatform):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the status.
		return 499
	}
	return http.StatusInternalServerError
}

// registryAuthFailure keeps a registry's refusal of credentials from
// becoming a 401 on pull and push. The docker CLI answers a 401 from those
// routes by asking for a login and retrying, where dockerd answers 500 and
// the CLI prints the registry's message; berth does what dockerd does.
func registryAuthFailure(err error) error {
	if errors.Is(err, errdefs.ErrUnauthorized) {
		return &httpError{status: http.StatusInternalServerError, err: err}
	}
	return err
}

// writeError writes err as the JSON error body clients parse; the
// Content-Type must be exactly application/json for them to read it.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == 499 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, common.ErrorResponse{Message: err.Error()})
}

// writeJSON writes v with status as a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
