package registry_test

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/test/fixture"
	regtest "github.com/berth-project/berth/test/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestResolveAndFetchBusybox(t *testing.T) {
	t.Parallel()
	r, pushed := seeded(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	ref := mustRef(t, r.Host+"/"+busyboxRepo)

	res, err := c.Resolve(ctx, ref, hostPlatform(), nil)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if res.Index != nil || res.IndexBytes != nil {
		t.Errorf("a single manifest resolved with an index: %+v", res.Index)
	}
	if res.Manifest.Digest != pushed.Digest || res.Manifest.Size != pushed.Size || res.Manifest.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("Manifest = %+v, pushed %+v", res.Manifest, pushed)
	}
	if got := digest.FromBytes(res.ManifestBytes); got != pushed.Digest {
		t.Errorf("ManifestBytes hash to %s, want %s", got, pushed.Digest)
	}
	if want := ref.WithDigest(pushed.Digest); res.Ref != want {
		t.Errorf("Ref = %s, want %s", res.Ref, want)
	}
	if len(res.Parsed.Layers) != 1 || res.Config.Digest != res.Parsed.Config.Digest || res.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Fatalf("Parsed = %+v, Config = %+v", res.Parsed, res.Config)
	}

	config := fetchAll(t, c, ctx, ref, res.Config, 0, nil)
	if !bytes.Equal(config, layoutBlob(t, res.Config.Digest)) {
		t.Errorf("config fetched differs from the pushed one")
	}
	layer := res.Parsed.Layers[0]
	got := fetchAll(t, c, ctx, res.Ref, layer, 0, nil)
	if digest.FromBytes(got) != layer.Digest || int64(len(got)) != layer.Size {
		t.Errorf("layer fetched: %d bytes hashing to %s, want %d and %s", len(got), digest.FromBytes(got), layer.Size, layer.Digest)
	}

	// By digest, and by tag and digest (which pulls by digest).
	for _, s := range []string{
		r.Host + "/" + busyboxRepo + "@" + pushed.Digest.String(),
		r.Host + "/" + busyboxRepo + ":nosuchtag@" + pushed.Digest.String(),
	} {
		res2, err := c.Resolve(ctx, mustRef(t, s), hostPlatform(), nil)
		if err != nil {
			t.Fatalf("Resolve %s: %v", s, err)
		}
		if res2.Manifest.Digest != pushed.Digest || !bytes.Equal(res2.ManifestBytes, res.ManifestBytes) {
			t.Errorf("Resolve %s = %s, want %s", s, res2.Manifest.Digest, pushed.Digest)
		}
	}
}

func TestResolveNotFound(t *testing.T) {
	t.Parallel()
	r, pushed := seeded(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)

	ref := mustRef(t, r.Host+"/"+busyboxRepo+":nope")
	_, err := c.Resolve(ctx, ref, hostPlatform(), nil)
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Resolve of a missing tag: %v, want ErrNotFound", err)
	}
	want := "manifest for " + r.Host + "/" + busyboxRepo + ":nope not found: manifest unknown: manifest unknown"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	var rerr *registry.Error
	if !errors.As(err, &rerr) || rerr.Ref != ref.Familiar() {
		t.Errorf("error does not carry the reference: %#v", err)
	}

	if _, err := c.Resolve(ctx, mustRef(t, r.Host+"/berth/nothing"), hostPlatform(), nil); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Resolve of a missing repository: %v, want ErrNotFound", err)
	}
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("missing"), Size: 7}
	_, err = c.Fetch(ctx, mustRef(t, r.Host+"/"+busyboxRepo), missing, 0, nil)
	if !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), missing.Digest.String()) {
		t.Errorf("Fetch of a missing blob: %v, want ErrNotFound naming the digest", err)
	}
	_ = pushed
}

// platformImage is a small random image whose config names platform.
func platformImage(t *testing.T, os, arch string, oci bool) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img
}

func imageDigest(t *testing.T, img v1.Image) digest.Digest {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.String())
}

func TestResolveMultiPlatform(t *testing.T) {
	t.Parallel()
	r := regtest.Start(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)

	for _, tc := range []struct {
		name      string
		oci       bool
		indexType types.MediaType
		manifest  string
	}{
		{"oci", true, types.OCIImageIndex, ocispec.MediaTypeImageManifest},
		{"docker", false, types.DockerManifestList, registry.MediaTypeDockerManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			amd := platformImage(t, "linux", "amd64", tc.oci)
			arm := platformImage(t, "linux", "arm64", tc.oci)
			idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index,
				mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
				mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
			), tc.indexType)
			r.WriteIndex(t, idx, "berth/multi:"+tc.name)
			idxDigest, err := idx.Digest()
			if err != nil {
				t.Fatal(err)
			}
			ref := mustRef(t, r.Host+"/berth/multi:"+tc.name)

			for _, p := range []struct {
				want ocispec.Platform
				img  v1.Image
			}{
				{ocispec.Platform{OS: "linux", Architecture: "amd64"}, amd},
				{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, arm},
				{ocispec.Platform{Architecture: "aarch64"}, arm},
			} {
				res, err := c.Resolve(ctx, ref, p.want, nil)
				if err != nil {
					t.Fatalf("Resolve %s: %v", registry.FormatPlatform(p.want), err)
				}
				if want := imageDigest(t, p.img); res.Manifest.Digest != want {
					t.Errorf("Resolve %s picked %s, want %s", registry.FormatPlatform(p.want), res.Manifest.Digest, want)
				}
				if res.Index == nil || res.Index.Digest.String() != idxDigest.String() || res.Index.MediaType != string(tc.indexType) {
					t.Errorf("Index = %+v, want %s of type %s", res.Index, idxDigest, tc.indexType)
				}
				if res.Ref.Digest().String() != idxDigest.String() {
					t.Errorf("Ref = %s, want the index's digest %s", res.Ref, idxDigest)
				}
				if res.Manifest.Platform == nil || res.Manifest.MediaType != tc.manifest || res.Parsed.MediaType != tc.manifest {
					t.Errorf("Manifest = %+v, Parsed.MediaType = %q, want platform and type %s", res.Manifest, res.Parsed.MediaType, tc.manifest)
				}
				cfg := fetchAll(t, c, ctx, res.Ref, res.Config, 0, nil)
				if digest.FromBytes(cfg) != res.Config.Digest {
					t.Errorf("config does not match its digest")
				}
			}

			_, err = c.Resolve(ctx, ref, ocispec.Platform{OS: "linux", Architecture: "s390x"}, nil)
			if !errors.Is(err, registry.ErrNoMatchingPlatform) {
				t.Fatalf("Resolve linux/s390x: %v, want ErrNoMatchingPlatform", err)
			}
			for _, s := range []string{"linux/s390x", "linux/amd64", "linux/arm64"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not name %s", err, s)
				}
			}
		})
	}
}

// fakeRegistry serves /v2/ and hands everything else to h, counting
// requests by path. It stands for registries that misbehave on purpose.
func fakeRegistry(t *testing.T, h http.HandlerFunc) (host string, hits func(path string) int) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[p]
	}
}

func TestMirrorsBeforeDockerHub(t *testing.T) {
	t.Parallel()
	r := regtest.Start(t)
	pushed := r.Push(t, fixture.ImageLayout(t), "library/busybox:latest")
	// The first mirror is a registry without the image.
	emptyMirror, hits := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
	})
	c := newClient(t, registry.Config{Mirrors: []string{"http://" + emptyMirror, "http://" + r.Host}})
	ctx := ctxTimeout(t, 30*time.Second)
	ref := mustRef(t, "busybox")

	res, err := c.Resolve(ctx, ref, hostPlatform(), nil)
	if err != nil {
		t.Fatalf("Resolve through mirrors: %v", err)
	}
	if res.Manifest.Digest != pushed.Digest {
		t.Errorf("Resolve = %s, want %s", res.Manifest.Digest, pushed.Digest)
	}
	if hits("/v2/library/busybox/manifests/latest") != 1 {
		t.Errorf("the first mirror was not asked first")
	}
	layer := res.Parsed.Layers[0]
	got := fetchAll(t, c, ctx, res.Ref, layer, 0, nil)
	if digest.FromBytes(got) != layer.Digest {
		t.Errorf("layer through mirrors does not match its digest")
	}
	if hits("/v2/library/busybox/blobs/"+layer.Digest.String()) != 1 {
		t.Errorf("the first mirror was not asked for the blob")
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)

	start := time.Now()
	_, err = c.Resolve(ctx, mustRef(t, host+"/x"), hostPlatform(), nil)
	elapsed := time.Since(start)
	if !errors.Is(err, registry.ErrUnreachable) {
		t.Fatalf("Resolve against a closed port: %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), `"http://`+host+`/v2/"`) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q does not say what was refused", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("took %v to give up; want under 2s", elapsed)
	}
	// Retried, though: 200 ms and 400 ms between three attempts.
	if elapsed < 600*time.Millisecond {
		t.Errorf("gave up after %v: not retried", elapsed)
	}

	start = time.Now()
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("x"), Size: 1}
	if _, err := c.Fetch(ctx, mustRef(t, host+"/x"), desc, 0, nil); !errors.Is(err, registry.ErrUnreachable) {
		t.Errorf("Fetch against a closed port: %v, want ErrUnreachable", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Fetch took %v to give up", time.Since(start))
	}
}

// counter is an atomic request counter for fake registries.
type counter struct{ n atomic.Int32 }

func (c *counter) inc() int { return int(c.n.Add(1)) }
