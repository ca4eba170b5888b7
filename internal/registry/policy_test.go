package registry_test

// Which registries may be spoken to over plain HTTP or unverified TLS, and
// where credentials go. Registries with other names than 127.0.0.1 are
// reached through a Transport that dials every connection to a server on
// 127.0.0.1, so nothing leaves the machine.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// loopbackTransport dials every connection to addr, whatever the URL says.
func loopbackTransport(addr string, skipVerify bool) *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: skipVerify},
	}
}

// manifestServer answers /v2/ and one manifest at /v2/<repo>/manifests/latest,
// recording the Authorization header of the manifest request.
type manifestServer struct {
	repo, body string
	mu         sync.Mutex
	auth       []string
	requests   int
}

func (m *manifestServer) served() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests
}

func (m *manifestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests++
	m.mu.Unlock()
	switch r.URL.Path {
	case "/v2/":
		w.WriteHeader(http.StatusOK)
	case "/v2/" + m.repo + "/manifests/latest":
		m.mu.Lock()
		m.auth = append(m.auth, r.Header.Get("Authorization"))
		m.mu.Unlock()
		serveManifest(w, ocispec.MediaTypeImageManifest, []byte(m.body), "")
	default:
		http.NotFound(w, r)
	}
}

func TestPlainHTTPOnlyForInsecureRegistries(t *testing.T) {
	t.Parallel()
	ms := &manifestServer{repo: "x", body: string(manifestOf(t, 0))}
	srv := httptest.NewServer(ms)
	t.Cleanup(srv.Close)
	tr := loopbackTransport(srv.Listener.Addr().String(), false)
	ctx := ctxTimeout(t, 30*time.Second)

	for _, tc := range []struct {
		host     string
		insecure []string
		ok       bool
	}{
		{"registry.test:5000", nil, false},
		{"registry.test:5000", []string{"registry.test:5000"}, true},
		{"registry.test:5000", []string{"registry.test"}, true}, // a bare host covers its ports
		{"registry.test:5000", []string{"registry.test:5001"}, false},
		{"10.1.2.3:5000", nil, false}, // RFC 1918 alone is not enough, unlike go-containerregistry's default
		{"10.1.2.3:5000", []string{"10.0.0.0/8"}, true},
		{"10.1.2.3:5000", []string{"192.168.0.0/16"}, false},
		{"localhost:5000", nil, true},
	} {
		c := newClient(t, registry.Config{Insecure: tc.insecure, Transport: tr})
		before := ms.served()
		start := time.Now()
		_, err := c.Resolve(ctx, mustRef(t, tc.host+"/x"), hostPlatform(), nil)
		if tc.ok && err != nil {
			t.Errorf("%s with insecure %q: %v", tc.host, tc.insecure, err)
		}
		if tc.ok {
			continue
		}
		// Refused: https meets a plain HTTP server, and plain HTTP is not
		// tried (go-containerregistry tries it for RFC 1918 addresses;
		// the client's policy refuses it then).
		if !errors.Is(err, registry.ErrUnreachable) || ms.served() != before {
			t.Errorf("%s with insecure %q: %v, %d plain HTTP requests; want ErrUnreachable and none",
				tc.host, tc.insecure, err, ms.served()-before)
		}
		if strings.HasPrefix(tc.host, "10.") && !strings.Contains(err.Error(), "plain HTTP refused") {
			t.Errorf("%s: %v, want plain HTTP refused", tc.host, err)
		}
		if time.Since(start) > 500*time.Millisecond {
			t.Errorf("%s: a protocol mismatch was retried (%v)", tc.host, time.Since(start))
		}
	}
}

func TestUnverifiedTLSOnlyForInsecureRegistries(t *testing.T) {
	t.Parallel()
	ms := &manifestServer{repo: "x", body: string(manifestOf(t, 0))}
	srv := httptest.NewUnstartedServer(ms)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()                                   // a certificate nobody trusts
	t.Cleanup(srv.Close)
	ctx := ctxTimeout(t, 30*time.Second)

	// The client's own transports, with a dialer that reaches the test
	// server: only the TLS policy differs between the two cases.
	var d net.Dialer
	addr := srv.Listener.Addr().String()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }

	// Verified TLS fails on the certificate, fast and without retries.
	c := newClient(t, registry.Config{Transport: &http.Transport{DialContext: dial}})
	start := time.Now()
	_, err := c.Resolve(ctx, mustRef(t, "secure.test/x"), hostPlatform(), nil)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v, want ErrUnreachable about the certificate", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("a certificate error was retried (%v)", time.Since(start))
	}
	// Listed as insecure, the client skips verification for that host:
	// here the configured Transport stands for the client's own
	// unverified one...
	c = newClient(t, registry.Config{Insecure: []string{"secure.test"}, Transport: loopbackTransport(addr, true)})
	if _, err := c.Resolve(ctx, mustRef(t, "secure.test/x"), hostPlatform(), nil); err != nil {
		t.Errorf("insecure registry with an untrusted certificate: %v", err)
	}
	// ...which a loopback registry, always insecure, gets for real.
	c = newClient(t, registry.Config{})
	if _, err := c.Resolve(ctx, mustRef(t, addr+"/x"), hostPlatform(), nil); err != nil {
		t.Errorf("loopback registry with an untrusted certificate: %v", err)
	}
}

func TestDockerHubCredentialsAndLibraryPath(t *testing.T) {
	t.Parallel()
	ms := &manifestServer{repo: "library/busybox", body: string(manifestOf(t, 0))}
	srv := httptest.NewTLSServer(ms)
	t.Cleanup(srv.Close)
	// docker.io is reached at index.docker.io over verified TLS; the
	// configured Transport (which skips verification for the test server)
	// carries it to 127.0.0.1.
	dir := writeDockerConfig(t, authsConfig("https://index.docker.io/v1/", "hubuser", "hubpass"))
	c := newClient(t, registry.Config{DockerConfigDir: dir, Transport: loopbackTransport(srv.Listener.Addr().String(), true)})
	res, err := c.Resolve(ctxTimeout(t, 30*time.Second), mustRef(t, "busybox"), hostPlatform(), nil)
	if err != nil {
		t.Fatalf("Resolve busybox: %v", err)
	}
	if res.Ref.String() != "docker.io/library/busybox:latest@"+res.Manifest.Digest.String() {
		t.Errorf("Ref = %s", res.Ref)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.auth) != 1 || ms.auth[0] != "Basic aHVidXNlcjpodWJwYXNz" { // hubuser:hubpass
		t.Errorf("Authorization sent: %q, want config.json's Docker Hub credentials", ms.auth)
	}
}

func TestCredentialsStayWithTheRegistryOnRedirect(t *testing.T) {
	t.Parallel()
	blob := []byte("blob stored elsewhere")
	d := digest.FromBytes(blob)
	var mu sync.Mutex
	var storageAuth []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		storageAuth = append(storageAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write(blob)
	}))
	t.Cleanup(storage.Close)
	var registryAuth string
	host, _ := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		registryAuth = r.Header.Get("Authorization")
		if r.URL.Path == "/v2/x/blobs/"+d.String() {
			http.Redirect(w, r, storage.URL+"/bucket/"+d.Encoded(), http.StatusTemporaryRedirect)
			return
		}
		http.NotFound(w, r)
	})
	c := newClient(t, registry.Config{})
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(blob))}
	got := fetchAll(t, c, ctxTimeout(t, 30*time.Second), mustRef(t, host+"/x"), desc, 0, &registry.Auth{Username: "u", Password: "p"})
	if string(got) != string(blob) {
		t.Fatalf("blob through a redirect: %q", got)
	}
	if registryAuth == "" {
		t.Errorf("the registry got no credentials")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(storageAuth) != 1 || storageAuth[0] != "" {
		t.Errorf("the storage host got Authorization %q", storageAuth)
	}
}
