package registry_test

// Registries that misbehave on purpose, served by httptest: a real
// registry will not send a 5 MiB manifest, lie about digests, ignore
// Range or fail on cue.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestOf returns an OCI manifest padded with an annotation to about
// size bytes (at least its natural size).
func manifestOf(t *testing.T, size int) []byte {
	t.Helper()
	m := ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config"), Size: 6},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("layer"), Size: 5}},
	}
	b, _ := json.Marshal(m)
	if pad := size - len(b) - len(`,"annotations":{"pad":""}`); pad > 0 {
		m.Annotations = map[string]string{"pad": strings.Repeat("x", pad)}
		b, _ = json.Marshal(m)
	}
	return b
}

func serveManifest(w http.ResponseWriter, mediaType string, body []byte, dcd string) {
	w.Header().Set("Content-Type", mediaType)
	if dcd != "" {
		w.Header().Set("Docker-Content-Digest", dcd)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func TestManifestSizeCap(t *testing.T) {
	t.Parallel()
	small := manifestOf(t, registry.MaxManifestSize-64)
	big := manifestOf(t, registry.MaxManifestSize+1024)
	host, _ := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/x/manifests/small":
			serveManifest(w, ocispec.MediaTypeImageManifest, small, digest.FromBytes(small).String())
		case "/v2/x/manifests/big":
			serveManifest(w, ocispec.MediaTypeImageManifest, big, digest.FromBytes(big).String())
		case "/v2/x/manifests/big-chunked":
			// No Content-Length: the cap must hold while reading.
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.(http.Flusher).Flush()
			w.Write(big)
		default:
			http.NotFound(w, r)
		}
	})
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)

	res, err := c.Resolve(ctx, mustRef(t, host+"/x:small"), hostPlatform(), nil)
	if err != nil {
		t.Fatalf("manifest just under the cap: %v", err)
	}
	if res.Manifest.Size != int64(len(small)) {
		t.Fatalf("manifest size %d, want %d", res.Manifest.Size, len(small))
	}
	for _, tag := range []string{"big", "big-chunked"} {
		_, err := c.Resolve(ctx, mustRef(t, host+"/x:"+tag), hostPlatform(), nil)
		if !errors.Is(err, registry.ErrInvalidManifest) || !strings.Contains(err.Error(), strconv.Itoa(registry.MaxManifestSize)) {
			t.Errorf("%s manifest: %v, want ErrInvalidManifest naming the cap", tag, err)
		}
	}
}

func TestManifestDigestChecks(t *testing.T) {
	t.Parallel()
	good := manifestOf(t, 0)
	other := manifestOf(t, 600)
	schema1 := []byte(`{"schemaVersion":1,"name":"x","tag":"old","architecture":"amd64","fsLayers":[{"blobSum":"` + digest.FromString("l").String() + `"}],"history":[]}`)
	host, _ := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/x/manifests/lying-header":
			serveManifest(w, ocispec.MediaTypeImageManifest, good, digest.FromBytes(other).String())
		case "/v2/x/manifests/" + digest.FromBytes(good).String():
			serveManifest(w, ocispec.MediaTypeImageManifest, other, "") // not what was asked for
		case "/v2/x/manifests/schema1":
			serveManifest(w, "application/vnd.docker.distribution.manifest.v1+prettyjws", schema1, "")
		case "/v2/x/manifests/schema1-json":
			serveManifest(w, "application/json", schema1, "")
		case "/v2/x/manifests/not-json":
			serveManifest(w, ocispec.MediaTypeImageManifest, []byte("<html>hello</html>"), "")
		case "/v2/x/manifests/artifact":
			serveManifest(w, "application/vnd.oci.artifact.manifest.v1+json", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}`), "")
		case "/v2/x/manifests/no-header":
			serveManifest(w, "application/json", good, "") // shape and mediaType field decide
		default:
			http.NotFound(w, r)
		}
	})
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	for _, tc := range []struct{ ref, want string }{
		{"x:lying-header", "does not match the Docker-Content-Digest header"},
		{"x@" + digest.FromBytes(good).String(), "does not match the requested digest"},
		{"x:schema1", "schema 1 is not supported"},
		{"x:schema1-json", "schema 1 is not supported"},
		{"x:not-json", "not JSON"},
		{"x:artifact", "unsupported media type"},
	} {
		_, err := c.Resolve(ctx, mustRef(t, host+"/"+tc.ref), hostPlatform(), nil)
		if !errors.Is(err, registry.ErrInvalidManifest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalidManifest saying %q", tc.ref, err, tc.want)
		}
	}
	res, err := c.Resolve(ctx, mustRef(t, host+"/x:no-header"), hostPlatform(), nil)
	if err != nil || res.Manifest.MediaType != ocispec.MediaTypeImageManifest || res.Manifest.Digest != digest.FromBytes(good) {
		t.Errorf("manifest served as application/json: %+v, %v", res, err)
	}
}

func TestIndexEntriesChecked(t *testing.T) {
	t.Parallel()
	m := manifestOf(t, 0)
	md := digest.FromBytes(m)
	platform := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	index := func(entries ...ocispec.Descriptor) []byte {
		b, _ := json.Marshal(ocispec.Index{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: entries})
		return b
	}
	indexes := map[string][]byte{
		"huge-entry":  index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: registry.MaxManifestSize + 1, Platform: platform}),
		"wrong-size":  index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m)) + 1, Platform: platform}),
		"bad-digest":  index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:zzz", Size: 1, Platform: platform}),
		"neg-size":    index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: -1, Platform: platform}),
		"good":        index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m)), Platform: platform}),
		"only-arm":    index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}}),
		"attestation": index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m)), Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}),
	}
	host, _ := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		tag := strings.TrimPrefix(r.URL.Path, "/v2/x/manifests/")
		if b, ok := indexes[tag]; ok {
			serveManifest(w, ocispec.MediaTypeImageIndex, b, "")
			return
		}
		if tag == md.String() {
			serveManifest(w, ocispec.MediaTypeImageManifest, m, md.String())
			return
		}
		http.NotFound(w, r)
	})
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for tag, want := range map[string]string{
		"huge-entry": "more than the 4194304 allowed",
		"wrong-size": "the index says",
		"bad-digest": "manifests[0]: digest",
		"neg-size":   "negative size",
	} {
		_, err := c.Resolve(ctx, mustRef(t, host+"/x:"+tag), amd64, nil)
		if !errors.Is(err, registry.ErrInvalidManifest) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrInvalidManifest saying %q", tag, err, want)
		}
	}
	res, err := c.Resolve(ctx, mustRef(t, host+"/x:good"), amd64, nil)
	if err != nil || res.Manifest.Digest != md || res.Manifest.Platform == nil {
		t.Fatalf("good index: %+v, %v", res, err)
	}
	_, err = c.Resolve(ctx, mustRef(t, host+"/x:only-arm"), amd64, nil)
	if !errors.Is(err, registry.ErrNoMatchingPlatform) || !strings.Contains(err.Error(), "(available: linux/arm/v7)") {
		t.Errorf("only-arm: %v", err)
	}
	_, err = c.Resolve(ctx, mustRef(t, host+"/x:attestation"), amd64, nil)
	if !errors.Is(err, registry.ErrNoMatchingPlatform) || !strings.Contains(err.Error(), "(available: )") {
		t.Errorf("attestation only: %v", err)
	}
}

// blobServer serves one blob at /v2/x/blobs/<digest> through serve.
func blobServer(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, blob []byte, n int)) (host string, desc ocispec.Descriptor, blob []byte, hits func() int) {
	t.Helper()
	blob = bytes.Repeat([]byte("0123456789abcdef"), 4096)
	desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	var count counter
	host, pathHits := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/x/blobs/"+desc.Digest.String() {
			http.NotFound(w, r)
			return
		}
		serve(w, r, blob, count.inc())
	})
	_ = pathHits
	return host, desc, blob, func() int { return int(count.n.Load()) }
}

func TestFetchFromServerIgnoringRange(t *testing.T) {
	t.Parallel()
	host, desc, blob, _ := blobServer(t, func(w http.ResponseWriter, r *http.Request, blob []byte, _ int) {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Write(blob) // 200 and the whole blob, whatever Range said
	})
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	for _, off := range []int64{0, 1, 5000, desc.Size - 1} {
		if got := fetchAll(t, c, ctx, mustRef(t, host+"/x"), desc, off, nil); !bytes.Equal(got, blob[off:]) {
			t.Errorf("from %d: %d bytes, want the last %d", off, len(got), desc.Size-off)
		}
	}
}

func TestFetchRefusesWrongLengthsAndRanges(t *testing.T) {
	t.Parallel()
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	for _, tc := range []struct {
		name   string
		offset int64
		serve  func(w http.ResponseWriter, blob []byte)
		open   string // error when opening, or "" to expect one when reading
		read   error
		readIn string
	}{
		{name: "too long", serve: func(w http.ResponseWriter, blob []byte) {
			w.(http.Flusher).Flush() // chunked: no Content-Length to check
			w.Write(append(blob, "extra"...))
		}, readIn: "longer than its descriptor's size"},
		{name: "too short", serve: func(w http.ResponseWriter, blob []byte) {
			w.(http.Flusher).Flush()
			w.Write(blob[:len(blob)-5])
		}, read: io.ErrUnexpectedEOF},
		{name: "range from elsewhere", offset: 100, serve: func(w http.ResponseWriter, blob []byte) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(blob)-1, len(blob)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob)
		}, open: "partial content: bytes 0-"},
		{name: "bad content-range", offset: 100, serve: func(w http.ResponseWriter, blob []byte) {
			w.Header().Set("Content-Range", "bytes lots")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob[100:])
		}, open: `Content-Range "bytes lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, desc, _, _ := blobServer(t, func(w http.ResponseWriter, r *http.Request, blob []byte, _ int) { tc.serve(w, blob) })
			rc, err := c.Fetch(ctx, mustRef(t, host+"/x"), desc, tc.offset, nil)
			if tc.open != "" {
				if err == nil || !strings.Contains(err.Error(), tc.open) {
					t.Fatalf("Fetch: %v, want an error saying %q", err, tc.open)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			defer rc.Close()
			_, err = io.ReadAll(rc)
			if err == nil || (tc.read != nil && !errors.Is(err, tc.read)) || (tc.readIn != "" && !strings.Contains(err.Error(), tc.readIn)) {
				t.Fatalf("read: %v, want %v %q", err, tc.read, tc.readIn)
			}
		})
	}
}

func TestFetchRetries(t *testing.T) {
	t.Parallel()
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	for _, tc := range []struct {
		name     string
		status   func(n int) int // status of the nth request (from 1); 200 serves the blob
		hits     int
		kind     error // nil: success
		atLeast  time.Duration
		atMost   time.Duration
		errorSay string
	}{
		{name: "503 twice then 200", status: func(n int) int { return map[bool]int{true: 503, false: 200}[n <= 2] },
			hits: 3, atLeast: 600 * time.Millisecond, atMost: 2 * time.Second},
		{name: "429 always", status: func(int) int { return 429 }, hits: 3, kind: registry.ErrUnreachable,
			atLeast: 600 * time.Millisecond, atMost: 2 * time.Second, errorSay: "registry unavailable: toomanyrequests: slow down"},
		{name: "400 is not retried", status: func(int) int { return 400 }, hits: 1, atMost: 5 * time.Second, errorSay: "400 Bad Request"},
		{name: "404 is not retried", status: func(int) int { return 404 }, hits: 1, kind: registry.ErrNotFound, atMost: 5 * time.Second},
		{name: "403 is not retried", status: func(int) int { return 403 }, hits: 1, kind: registry.ErrUnauthorized, atMost: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, desc, blob, hits := blobServer(t, func(w http.ResponseWriter, r *http.Request, blob []byte, n int) {
				if s := tc.status(n); s != http.StatusOK {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(s)
					if s == 429 {
						w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
					}
					return
				}
				w.Write(blob)
			})
			start := time.Now()
			rc, err := c.Fetch(ctx, mustRef(t, host+"/x"), desc, 0, nil)
			elapsed := time.Since(start)
			if got := hits(); got != tc.hits {
				t.Errorf("%d requests, want %d", got, tc.hits)
			}
			if elapsed < tc.atLeast || elapsed > tc.atMost {
				t.Errorf("took %v, want between %v and %v", elapsed, tc.atLeast, tc.atMost)
			}
			if tc.kind == nil && tc.errorSay == "" {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				defer rc.Close()
				if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, blob) {
					t.Fatalf("read after retries: %v", err)
				}
				return
			}
			if err == nil {
				rc.Close()
				t.Fatal("Fetch succeeded")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %v, want %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.errorSay) {
				t.Errorf("error %q does not say %q", err, tc.errorSay)
			}
		})
	}
}

func TestFetchForeignLayerFromItsURLs(t *testing.T) {
	t.Parallel()
	var registryHits, urlHits counter
	blob := []byte("a foreign layer's bytes, served from elsewhere")
	d := digest.FromBytes(blob)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/layers/good":
			urlHits.inc()
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob)) // honours Range
		case "/layers/redirect":
			http.Redirect(w, r, "/layers/good", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(elsewhere.Close)
	host, _ := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/x/blobs/"+d.String() {
			registryHits.inc()
			w.Write(blob)
			return
		}
		http.NotFound(w, r)
	})
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	ref := mustRef(t, host+"/x")
	foreign := func(urls ...string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Digest: d, Size: int64(len(blob)), URLs: urls}
	}

	got := fetchAll(t, c, ctx, ref, foreign(elsewhere.URL+"/layers/missing", elsewhere.URL+"/layers/redirect"), 7, nil)
	if !bytes.Equal(got, blob[7:]) || urlHits.n.Load() != 1 || registryHits.n.Load() != 0 {
		t.Errorf("foreign layer: %q, %d URL hits, %d registry hits; want it from its second URL", got, urlHits.n.Load(), registryHits.n.Load())
	}
	// URLs that fail, or are not http(s), fall back to the registry.
	got = fetchAll(t, c, ctx, ref, foreign("file:///etc/passwd", elsewhere.URL+"/layers/missing"), 0, nil)
	if !bytes.Equal(got, blob) || registryHits.n.Load() != 1 {
		t.Errorf("foreign layer without a working URL: %q, %d registry hits", got, registryHits.n.Load())
	}
	// An ordinary layer's URLs are not used.
	plain := foreign(elsewhere.URL + "/layers/good")
	plain.MediaType = ocispec.MediaTypeImageLayerGzip
	fetchAll(t, c, ctx, ref, plain, 0, nil)
	if urlHits.n.Load() != 1 || registryHits.n.Load() != 2 {
		t.Errorf("a distributable layer was fetched from its URLs")
	}
}

func TestNotARegistry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	c := newClient(t, registry.Config{})
	_, err := c.Resolve(ctxTimeout(t, 10*time.Second), mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/x"), hostPlatform(), nil)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "not a registry") {
		t.Errorf("Resolve against a web server: %v, want ErrUnreachable saying it is not a registry", err)
	}

	// A registry whose /v2/ fails with 503 is down, not absent: retried.
	var pings counter
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.inc()
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	_, err = c.Resolve(ctxTimeout(t, 10*time.Second), mustRef(t, strings.TrimPrefix(down.URL, "http://")+"/x"), hostPlatform(), nil)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "registry unavailable") {
		t.Errorf("Resolve against a registry that is down: %v, want ErrUnreachable saying it is unavailable", err)
	}
	if n := pings.n.Load(); n != 3 {
		t.Errorf("%d pings of a registry that is down, want 3", n)
	}
}

func TestInsecurePolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		insecure []string
		mirrors  []string
		err      string
	}{
		{insecure: []string{"http://x"}, err: "want host[:port] or a CIDR"},
		{insecure: []string{"a/b"}, err: "want host[:port] or a CIDR"},
		{mirrors: []string{"ftp://mirror"}, err: "neither http nor https"},
		{mirrors: []string{"https://mirror/path"}, err: "only scheme and host"},
		{mirrors: []string{"https://user:pw@mirror"}, err: "only scheme and host"},
	} {
		_, err := registry.New(registry.Config{Insecure: tc.insecure, Mirrors: tc.mirrors, DockerConfigDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("New(insecure %q, mirrors %q): %v, want %q", tc.insecure, tc.mirrors, err, tc.err)
		}
	}
	for _, ok := range [][]string{{"10.0.0.0/8", "registry.local:5000", "registry.local"}, {"::1/128"}} {
		if _, err := registry.New(registry.Config{Insecure: ok, DockerConfigDir: t.TempDir()}); err != nil {
			t.Errorf("New(insecure %q): %v", ok, err)
		}
	}
}
