package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error kinds. Every error of this package that is one of these wraps it,
// so errors.Is finds the kind; the API maps kinds to docker's status codes.
var (
	// ErrNotFound: the registry has no such repository, tag, manifest or
	// blob (404, MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials, or the
	// repository needs some (401, 403, UNAUTHORIZED, DENIED).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoMatchingPlatform: an index has no manifest for the platform.
	ErrNoMatchingPlatform = errors.New("no matching manifest for platform")
	// ErrUnreachable: the registry could not be spoken to: DNS, dial and
	// TLS errors, something that is not a registry at /v2/, and 5xx or 429
	// answers that outlasted the retries.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrInvalidReference: a reference that docker's grammar rejects.
	ErrInvalidReference = errors.New("invalid reference format")
	// ErrInvalidManifest: a manifest or index that berth refuses: too big,
	// not matching its digest, malformed, schema 1, an unknown media type.
	ErrInvalidManifest = errors.New("invalid manifest")
)

// Error is an error of one of the kinds above about one reference. Its
// message is docker's wording where docker has one.
type Error struct {
	Kind error  // one of the Err* kinds; nil for a registry answer of no known kind (a 400)
	Ref  string // the reference, familiar form
	Err  error  // the cause, when there is one
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Unwrap gives errors.Is and errors.As both the kind and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// op says what was being done when an error happened; it picks docker's
// wording for the message.
type op int

const (
	opPull op = iota // manifests and indexes for a pull
	opFetch
	opPush
)

// classify turns an error from the transport or from a registry answer
// into an *Error of the right kind with docker's message. Errors already
// classified and context errors are returned as they are; anything else
// is wrapped with the reference but keeps no kind.
func classify(err error, o op, ref Reference, what string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	name := ref.Familiar()
	var terr *transport.Error
	if errors.As(err, &terr) {
		return classifyStatus(terr, o, ref, what)
	}
	if isNetworkError(err) {
		return &Error{Kind: ErrUnreachable, Ref: name, Err: err, msg: err.Error()}
	}
	return fmt.Errorf("%s %s: %w", opVerb(o), name, err)
}

func opVerb(o op) string {
	switch o {
	case opPush:
		return "push"
	case opFetch:
		return "fetch"
	}
	return "pull"
}

// classifyStatus maps a registry's error answer. what names the object
// ("manifest", "blob sha256:…") for not-found messages.
func classifyStatus(terr *transport.Error, o op, ref Reference, what string) error {
	name := ref.Familiar()
	detail := diagnostics(terr)
	kind := statusKind(terr)
	// A /v2/ answer that is neither 200, 401 nor a server error means
	// there is no registry API there, whatever the status says.
	if terr.Request != nil && terr.Request.URL.Path == "/v2/" && (kind == nil || kind == ErrNotFound) {
		return &Error{Kind: ErrUnreachable, Ref: name, Err: terr,
			msg: fmt.Sprintf("%s %q: not a registry: %s", terr.Request.Method, terr.Request.URL.Redacted(), detail)}
	}
	var msg string
	switch kind {
	case ErrUnauthorized:
		switch o {
		case opPush:
			msg = fmt.Sprintf("push access denied for %s: %s", ref.FamiliarName(), detail)
		default:
			msg = fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", ref.FamiliarName(), detail)
		}
	case ErrNotFound:
		switch {
		case what == "manifest":
			msg = fmt.Sprintf("manifest for %s not found: %s", name, detail)
		case what != "":
			msg = fmt.Sprintf("%s not found in %s: %s", what, ref.FamiliarName(), detail)
		default:
			msg = fmt.Sprintf("%s not found: %s", name, detail)
		}
	case ErrUnreachable:
		msg = fmt.Sprintf("%s %s: registry unavailable: %s", opVerb(o), subject(ref, what), detail)
	default:
		msg = fmt.Sprintf("%s %s: %s", opVerb(o), subject(ref, what), detail)
	}
	return &Error{Kind: kind, Ref: name, Err: terr, msg: msg}
}

// subject names what an operation was about: "blob sha256:… of x" for
// blobs, the reference otherwise.
func subject(ref Reference, what string) string {
	if what == "" || what == "manifest" {
		return ref.Familiar()
	}
	return what + " of " + ref.FamiliarName()
}

// statusKind picks the kind from the registry's error codes, then from
// the HTTP status. It returns nil for answers of no known kind.
func statusKind(terr *transport.Error) error {
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return ErrUnauthorized
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return ErrNotFound
		case transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
			return ErrUnreachable
		}
	}
	switch {
	case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
		return ErrUnauthorized
	case terr.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500:
		return ErrUnreachable
	}
	return nil
}

// diagnostics formats a registry's error list the way docker's errcode
// package does: "manifest unknown: manifest unknown". Without a list it
// falls back to the status line.
func diagnostics(terr *transport.Error) string {
	if len(terr.Errors) == 0 {
		return fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	}
	parts := make([]string, 0, len(terr.Errors))
	for _, d := range terr.Errors {
		code := strings.ToLower(strings.ReplaceAll(string(d.Code), "_", " "))
		if d.Message == "" {
			parts = append(parts, code)
			continue
		}
		parts = append(parts, code+": "+d.Message)
	}
	return strings.Join(parts, "; ")
}

// isNetworkError reports whether err is the network failing rather than
// the registry answering: dial, DNS, TLS, a connection cut short. Every
// error of http.Client.Do is a *url.Error, and apart from the context's
// (classified before) and the redirects this package refuses, they are
// all failures to talk.
func isNetworkError(err error) bool {
	if errors.Is(err, errRedirectRefused) {
		return false
	}
	var (
		urlErr  *url.Error
		opErr   *net.OpError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
	)
	return errors.As(err, &urlErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.As(err, &certErr) || errors.As(err, &recErr) || errors.Is(err, errPlainHTTPRefused)
}

// isCertError reports a TLS certificate that did not verify.
func isCertError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		ierr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr)
}
