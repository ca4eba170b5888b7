package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// A session is an authenticated HTTP client for one repository on one
// endpoint with one set of scopes and credentials. Creating it pings
// /v2/ (choosing https or plain HTTP and learning the auth challenge) and,
// for token auth, fetches a token: go-containerregistry's transport does
// both, and refreshes the token when the registry challenges again.
type session struct {
	ep     endpoint
	scheme string // what URLs are built with; the transport corrects it to what the ping found
	path   string // repository path on this endpoint
	client *http.Client
}

type sessionKey struct {
	host     string
	insecure bool
	path     string
	scopes   string // the actions and the mount sources, joined
	auth     Auth
}

// session returns a cached session or makes one. extraPull names other
// repositories on the same registry the session may read (the sources of
// cross-repository mounts): token servers grant only the scopes asked for
// when the token is made.
func (c *Client) session(ctx context.Context, ep endpoint, path string, push bool, extraPull []string, auth *Auth) (*session, error) {
	key := sessionKey{host: ep.host, insecure: ep.insecure, path: path}
	if push {
		key.scopes = "push," + strings.Join(extraPull, ",")
	}
	if auth != nil {
		key.auth = *auth
	}
	if s := c.sessions.get(key); s != nil {
		return s, nil
	}
	var opts []name.Option
	if ep.insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", ep.host, err)
	}
	repo := reg.Repo(path)
	authenticator, err := c.authenticator(ep, auth)
	if err != nil {
		return nil, err
	}
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		scopes = []string{repo.Scope(transport.PushScope)}
		for _, from := range extraPull {
			scopes = append(scopes, reg.Repo(from).Scope(transport.PullScope))
		}
	}
	base := &policyTransport{host: ep.host, insecure: ep.insecure, verified: c.verified, unverified: c.unverified}
	rt, err := transport.NewWithContext(ctx, reg, authenticator, transport.NewUserAgent(base, c.userAgent), scopes)
	if err != nil {
		return nil, err
	}
	s := &session{
		ep:     ep,
		scheme: reg.Scheme(),
		path:   path,
		client: &http.Client{Transport: rt, CheckRedirect: checkRedirect},
	}
	c.sessions.put(key, s)
	return s, nil
}

// forget drops a session after a failure that may mean it is stale (the
// registry moved from https to http, or restarted with other keys).
func (c *Client) forget(s *session) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	for k, e := range c.sessions.items {
		if e.s == s {
			delete(c.sessions.items, k)
		}
	}
}

func (sc *sessionCache) get(key sessionKey) *session {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	now := time.Now()
	for k, e := range sc.items {
		if now.Sub(e.created) > sessionTTL {
			delete(sc.items, k)
		}
	}
	if e, ok := sc.items[key]; ok {
		return e.s
	}
	return nil
}

func (sc *sessionCache) put(key sessionKey, s *session) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.items[key] = &sessionEntry{s: s, created: time.Now()}
}

// url is the API URL of kind ("manifests", "blobs") and ident in the
// session's repository.
func (s *session) url(kind, ident string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", s.scheme, s.ep.host, s.path, kind, ident)
}

func (s *session) do(ctx context.Context, method, url string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return s.client.Do(req)
}

var (
	errPlainHTTPRefused = errors.New("plain HTTP refused: the registry is not configured insecure")
	errRedirectRefused  = errors.New("redirect refused")
)

// policyTransport enforces, below authentication, which of the registry's
// requests may go over plain HTTP and which may skip TLS verification:
// only an insecure registry's. go-containerregistry would also fall back
// to plain HTTP for any RFC 1918 address, which docker does not do.
type policyTransport struct {
	host       string
	insecure   bool
	verified   http.RoundTripper
	unverified http.RoundTripper
}

func (p *policyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if sameHost(r.URL, p.host) {
		switch {
		case r.URL.Scheme == "http" && !p.insecure:
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", r.Method, r.URL.Redacted(), errPlainHTTPRefused)
		case r.URL.Scheme == "https" && p.insecure:
			return p.unverified.RoundTrip(r)
		}
	}
	return p.verified.RoundTrip(r)
}

// sameHost compares a URL's host with host[:port]; a missing port is the
// URL scheme's default on either side.
func sameHost(u *url.URL, hostport string) bool {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		h, p = hostport, ""
	}
	if !strings.EqualFold(u.Hostname(), strings.Trim(h, "[]")) {
		return false
	}
	def := "443"
	if u.Scheme == "http" {
		def = "80"
	}
	up := u.Port()
	if up == "" {
		up = def
	}
	if p == "" {
		p = def
	}
	return up == p
}

// checkRedirect follows at most ten redirects, never to another scheme
// than http(s), and never from https down to plain HTTP: a blob's storage
// backend may live elsewhere, but not behind a downgrade.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("%s %s: %w: stopped after 10 redirects", via[0].Method, via[0].URL.Redacted(), errRedirectRefused)
	}
	prev := via[len(via)-1].URL
	switch {
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return fmt.Errorf("%s %s: %w to scheme %q", via[0].Method, via[0].URL.Redacted(), errRedirectRefused, req.URL.Scheme)
	case prev.Scheme == "https" && req.URL.Scheme == "http":
		return fmt.Errorf("%s %s: %w from https to %s", via[0].Method, via[0].URL.Redacted(), errRedirectRefused, req.URL.Redacted())
	}
	return nil
}
