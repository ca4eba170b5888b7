package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Opener returns Fetch bound to one blob, for the content store's
// resumable ingest. The result's type is unnamed so that it is assignable
// to content.OpenFunc without this package importing content.
func (c *Client) Opener(ref Reference, desc ocispec.Descriptor, auth *Auth) func(ctx context.Context, offset int64) (io.ReadCloser, error) {
	return func(ctx context.Context, offset int64) (io.ReadCloser, error) {
		return c.Fetch(ctx, ref, desc, offset, auth)
	}
}

// Fetch opens the blob desc of ref's repository from byte offset on. It
// asks for the rest with an HTTP Range; a registry that ignores Range
// sends the whole blob, whose first offset bytes are then discarded.
// Redirects (to a storage backend) are followed. For non-distributable
// ("foreign") layers the descriptor's URLs are tried first, then the
// registry, as docker does; for docker.io references the mirrors come
// before docker.io. Opening is retried on network errors, 5xx and 429.
//
// The reader returns exactly desc.Size-offset bytes: fewer is
// io.ErrUnexpectedEOF, more is an error. It does not check the digest
// (it sees only a suffix of the blob when offset > 0): the content store
// verifies the whole blob as it is written.
func (c *Client) Fetch(ctx context.Context, ref Reference, desc ocispec.Descriptor, offset int64, auth *Auth) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch from %s: digest %q: %w", ref.FamiliarName(), desc.Digest, err)
	}
	if desc.Size < 0 || offset < 0 || offset > desc.Size {
		return nil, fmt.Errorf("fetch %s from %s: offset %d outside its %d bytes", desc.Digest, ref.FamiliarName(), offset, desc.Size)
	}
	if offset == desc.Size {
		return io.NopCloser(strings.NewReader("")), nil
	}
	var errs []error
	if isForeign(desc) {
		for _, u := range desc.URLs {
			rc, err := c.fetchURL(ctx, ref, desc, u, offset)
			if err == nil {
				return rc, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, err)
		}
	}
	for _, ep := range c.endpoints(ctx, ref) {
		rc, err := c.fetchAt(ctx, ep, ref, desc, offset, auth)
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	// The registry's own answer explains best; earlier ones (URLs,
	// mirrors) are still kept for errors.Is and the message.
	last := errs[len(errs)-1]
	if len(errs) == 1 {
		return nil, last
	}
	return nil, &joined{last: last, all: errs}
}

// joined is the error of several sources tried in turn: it reads as the
// last one (the registry itself) and unwraps to all of them.
type joined struct {
	last error
	all  []error
}

func (j *joined) Error() string {
	var b strings.Builder
	b.WriteString(j.last.Error())
	b.WriteString(" (also tried: ")
	for i, e := range j.all[:len(j.all)-1] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap lets errors.Is see the registry's error first.
func (j *joined) Unwrap() []error {
	return append([]error{j.last}, j.all[:len(j.all)-1]...)
}

// isForeign reports a non-distributable layer with URLs: docker's
// "foreign" layers and OCI's non-distributable ones.
func isForeign(desc ocispec.Descriptor) bool {
	return len(desc.URLs) > 0 && (strings.Contains(desc.MediaType, "foreign") || strings.Contains(desc.MediaType, "nondistributable"))
}

func (c *Client) fetchAt(ctx context.Context, ep endpoint, ref Reference, desc ocispec.Descriptor, offset int64, auth *Auth) (io.ReadCloser, error) {
	what := "blob " + desc.Digest.String()
	var rc io.ReadCloser
	err := c.withRetry(ctx, func() error {
		s, err := c.session(ctx, ep, ref.Path(), false, nil, auth)
		if err != nil {
			return classify(err, opFetch, ref, what)
		}
		rc, err = openRange(ctx, s.client, s.url("blobs", desc.Digest.String()), desc, offset)
		if err != nil && isNetworkError(err) {
			c.forget(s)
		}
		return classify(err, opFetch, ref, what)
	})
	return rc, err
}

// fetchURL opens a foreign layer from one of its URLs: http(s) only, plain
// HTTP only to hosts that are insecure registries, no credentials.
func (c *Client) fetchURL(ctx context.Context, ref Reference, desc ocispec.Descriptor, raw string, offset int64) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("fetch %s from %q: not an http(s) URL", desc.Digest, raw)
	}
	insecure := c.isInsecure(ctx, u.Host)
	if u.Scheme == "http" && !insecure {
		return nil, fmt.Errorf("fetch %s from %s: %w", desc.Digest, u.Redacted(), errPlainHTTPRefused)
	}
	client := &http.Client{
		Transport:     transport.NewUserAgent(&policyTransport{host: u.Host, insecure: insecure, verified: c.verified, unverified: c.unverified}, c.userAgent),
		CheckRedirect: checkRedirect,
	}
	var rc io.ReadCloser
	err = c.withRetry(ctx, func() error {
		var err error
		rc, err = openRange(ctx, client, u.String(), desc, offset)
		return classify(err, opFetch, ref, "blob "+desc.Digest.String())
	})
	return rc, err
}

// openRange GETs url from offset and returns a reader of exactly the
// remaining bytes.
func openRange(ctx context.Context, client *http.Client, u string, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	remaining := desc.Size - offset
	switch resp.StatusCode {
	case http.StatusPartialContent:
		// Checked below, also when nobody asked for a range.
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: Content-Length %d, the descriptor says %d", redact(u), resp.ContentLength, desc.Size)
		}
		if offset > 0 {
			// The server ignored Range: skip what the caller has.
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("GET %s: skip to offset %d of a server that ignores Range: %w", redact(u), offset, err)
			}
		}
		return &exactReader{rc: resp.Body, remaining: remaining, what: desc.Digest.String()}, nil
	default:
		defer resp.Body.Close()
		return nil, transport.CheckError(resp, http.StatusOK, http.StatusPartialContent)
	}
	start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err == nil && (start != offset || end != desc.Size-1 || (total >= 0 && total != desc.Size)) {
		err = fmt.Errorf("bytes %d-%d/%d, asked for %d-%d/%d", start, end, total, offset, desc.Size-1, desc.Size)
	}
	if err == nil && resp.ContentLength >= 0 && resp.ContentLength != remaining {
		err = fmt.Errorf("Content-Length %d for %d bytes", resp.ContentLength, remaining)
	}
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: partial content: %w", redact(u), err)
	}
	return &exactReader{rc: resp.Body, remaining: remaining, what: desc.Digest.String()}, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<bad URL>"
	}
	return p.Redacted()
}

// parseContentRange parses "bytes start-end/total" (total may be "*",
// returned as -1).
func parseContentRange(h string) (start, end, total int64, err error) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q: not bytes", h)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q: no total", h)
	}
	s, e, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q: no range", h)
	}
	if start, err = strconv.ParseInt(s, 10, 64); err == nil {
		end, err = strconv.ParseInt(e, 10, 64)
	}
	if err != nil || start < 0 || end < start {
		return 0, 0, 0, fmt.Errorf("Content-Range %q: bad range", h)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, 0, fmt.Errorf("Content-Range %q: bad total", h)
		}
	}
	return start, end, total, nil
}

// errBlobTooLong is a blob longer than its descriptor said.
var errBlobTooLong = errors.New("blob is longer than its descriptor's size")

// exactReader yields exactly remaining bytes of rc: an early EOF is
// io.ErrUnexpectedEOF and a byte past the end is errBlobTooLong, so a
// hostile server can neither stream forever nor stop short unnoticed.
type exactReader struct {
	rc        io.ReadCloser
	remaining int64
	what      string
	err       error
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.remaining == 0 {
		// One more read tells a clean end from extra bytes.
		var one [1]byte
		n, err := io.ReadFull(r.rc, one[:])
		switch {
		case n > 0:
			r.err = fmt.Errorf("read %s: %w", r.what, errBlobTooLong)
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			r.err = io.EOF
		default:
			r.err = fmt.Errorf("read %s: %w", r.what, err)
		}
		return 0, r.err
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.rc.Read(p)
	r.remaining -= int64(n)
	if err == io.EOF {
		if r.remaining > 0 {
			r.err = fmt.Errorf("read %s: %d bytes missing: %w", r.what, r.remaining, io.ErrUnexpectedEOF)
			return n, r.err
		}
		err = nil // the final check happens on the next Read
	} else if err != nil {
		r.err = fmt.Errorf("read %s: %w", r.what, err)
		return n, r.err
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }
