package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHubHost is where Docker Hub's registry API answers for docker.io
// names (go-containerregistry's name for it; it serves /v2/).
const dockerHubHost = name.DefaultRegistry

// Config configures a Client.
type Config struct {
	// Mirrors are pull-through mirrors of docker.io ("http://127.0.0.1:5000",
	// "https://mirror.example", or a bare host[:port], which means https),
	// tried in order before docker.io itself. A mirror given with http://
	// is spoken to over plain HTTP.
	Mirrors []string
	// Insecure lists registries (host[:port], or a CIDR matched against
	// the host's addresses) spoken to over plain HTTP or with unverified
	// TLS. localhost, 127.0.0.0/8 and ::1 always are, as docker allows.
	Insecure []string
	// DockerConfigDir holds config.json with credentials; empty means
	// $DOCKER_CONFIG, else ~/.docker.
	DockerConfigDir string
	// UserAgent is sent with every request; empty means "berth".
	UserAgent string
	// Transport carries every request when set (tests, proxies); otherwise
	// the client makes its own from http.DefaultTransport's settings.
	Transport http.RoundTripper
}

// Client speaks the distribution protocol to registries with berth's
// policy: which hosts may use plain HTTP, mirrors, credentials, retries
// and limits. It is safe for concurrent use.
type Client struct {
	mirrors      []mirror
	insecureHost map[string]bool // host[:port] and bare hosts, lower case
	insecureNets []netip.Prefix
	configDir    string
	userAgent    string
	verified     http.RoundTripper // TLS verified
	unverified   http.RoundTripper // TLS unverified, for insecure registries
	sessions     sessionCache
	// sleep waits between retries (sleepCtx: a timer that the context ends).
	sleep func(context.Context, time.Duration) error
}

type mirror struct {
	host  string
	plain bool // configured with http://
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	c := &Client{
		insecureHost: map[string]bool{},
		configDir:    cfg.DockerConfigDir,
		userAgent:    cfg.UserAgent,
		sleep:        sleepCtx,
	}
	c.sessions.items = map[sessionKey]*sessionEntry{}
	if c.userAgent == "" {
		c.userAgent = "berth"
	}
	if c.configDir == "" {
		c.configDir = os.Getenv("DOCKER_CONFIG")
	}
	if c.configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("registry client: no DockerConfigDir, no $DOCKER_CONFIG and no home directory: %w", err)
		}
		c.configDir = filepath.Join(home, ".docker")
	}
	for _, s := range cfg.Insecure {
		s = strings.ToLower(strings.TrimSpace(s))
		if p, err := netip.ParsePrefix(s); err == nil {
			c.insecureNets = append(c.insecureNets, p.Masked())
			continue
		}
		if strings.Contains(s, "://") || strings.Contains(s, "/") || s == "" {
			return nil, fmt.Errorf("registry client: insecure registry %q: want host[:port] or a CIDR", s)
		}
		c.insecureHost[s] = true
	}
	for _, s := range cfg.Mirrors {
		m, err := parseMirror(s)
		if err != nil {
			return nil, err
		}
		c.mirrors = append(c.mirrors, m)
	}
	if cfg.Transport != nil {
		c.verified, c.unverified = cfg.Transport, cfg.Transport
	} else {
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.MaxIdleConnsPerHost = 8
		c.verified = base
		skip := base.Clone()
		skip.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // only for registries configured insecure
		c.unverified = skip
	}
	return c, nil
}

func parseMirror(s string) (mirror, error) {
	raw := strings.TrimSpace(s)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return mirror{}, fmt.Errorf("registry client: mirror %q: want [http[s]://]host[:port]", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return mirror{}, fmt.Errorf("registry client: mirror %q: scheme %q is neither http nor https", s, u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return mirror{}, fmt.Errorf("registry client: mirror %q: only scheme and host[:port] are allowed", s)
	}
	return mirror{host: strings.ToLower(u.Host), plain: u.Scheme == "http"}, nil
}

// endpoint is one registry a reference may be served from: its own, or a
// mirror of docker.io.
type endpoint struct {
	host     string // host[:port] the API is at
	insecure bool   // plain HTTP and unverified TLS allowed
	mirror   bool
}

// endpoints lists where ref's repository is looked for, in order:
// mirrors first for docker.io names, then the registry itself.
func (c *Client) endpoints(ctx context.Context, ref Reference) []endpoint {
	var eps []endpoint
	host := ref.Domain()
	if host == DockerHubDomain {
		for _, m := range c.mirrors {
			eps = append(eps, endpoint{host: m.host, insecure: m.plain || c.isInsecure(ctx, m.host), mirror: true})
		}
		host = dockerHubHost
	}
	return append(eps, endpoint{host: host, insecure: c.isInsecure(ctx, host)})
}

// isInsecure applies docker's rule for plain HTTP and unverified TLS:
// loopback always, otherwise only registries the configuration names, by
// host[:port], bare host, or an address in a listed CIDR.
func (c *Client) isInsecure(ctx context.Context, hostport string) bool {
	hostport = strings.ToLower(hostport)
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	if c.insecureHost[hostport] || c.insecureHost[host] {
		return true
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		addr = addr.Unmap()
		return addr.IsLoopback() || c.inInsecureNets(addr)
	}
	if len(c.insecureNets) == 0 {
		return false
	}
	// docker matches a name against the CIDRs by its addresses.
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if c.inInsecureNets(a.Unmap()) {
			return true
		}
	}
	return false
}

func (c *Client) inInsecureNets(addr netip.Addr) bool {
	for _, p := range c.insecureNets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// sessionCache keeps authenticated transports, so a pull's manifest and
// blob requests share one ping and one token. Entries expire, which bounds
// the cache in a long-running daemon and picks up changed credentials.
type sessionCache struct {
	mu    sync.Mutex
	items map[sessionKey]*sessionEntry
}

type sessionEntry struct {
	s       *session
	created time.Time
}

const sessionTTL = 5 * time.Minute
