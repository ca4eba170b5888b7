package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/test/fixture"
	regtest "github.com/berth-project/berth/test/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxLayout is the fixture image as Push takes it.
type busyboxLayout struct {
	manifest      ocispec.Descriptor
	manifestBytes []byte
	blobs         []ocispec.Descriptor // config, then layers
}

func readBusyboxLayout(t *testing.T) busyboxLayout {
	t.Helper()
	var idx ocispec.Index
	b, err := os.ReadFile(filepath.Join(fixture.ImageLayout(t), "index.json"))
	if err == nil {
		err = json.Unmarshal(b, &idx)
	}
	if err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("fixture index.json: %v (%d manifests)", err, len(idx.Manifests))
	}
	d := idx.Manifests[0]
	l := busyboxLayout{
		manifest:      ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
		manifestBytes: layoutBlob(t, d.Digest),
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(l.manifestBytes, &m); err != nil {
		t.Fatal(err)
	}
	l.blobs = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	return l
}

func openLayout(t *testing.T) func(ocispec.Descriptor) (io.ReadCloser, error) {
	dir := fixture.ImageLayout(t)
	return func(d ocispec.Descriptor) (io.ReadCloser, error) {
		return os.Open(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	}
}

// progressLog records Push's progress events per blob.
type progressLog struct {
	mu     sync.Mutex
	events map[digest.Digest][]string
	last   map[digest.Digest][2]int64
}

func newProgressLog() *progressLog {
	return &progressLog{events: map[digest.Digest][]string{}, last: map[digest.Digest][2]int64{}}
}

func (p *progressLog) record(d ocispec.Descriptor, status string, cur, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events[d.Digest]
	if len(ev) == 0 || ev[len(ev)-1] != status {
		p.events[d.Digest] = append(ev, status)
	}
	p.last[d.Digest] = [2]int64{cur, total}
}

// final checks that every blob went Preparing -> ... -> want, and ended
// at total/total.
func (p *progressLog) final(t *testing.T, blobs []ocispec.Descriptor, want ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range blobs {
		ev := p.events[b.Digest]
		if len(ev) < 2 || ev[0] != "Preparing" {
			t.Errorf("blob %s: events %q, want Preparing first", b.Digest, ev)
			continue
		}
		if got := ev[1:]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("blob %s: events after Preparing %q, want %q", b.Digest, got, want)
		}
		if last := p.last[b.Digest]; last != [2]int64{b.Size, b.Size} {
			t.Errorf("blob %s: last progress %d/%d, want %d/%d", b.Digest, last[0], last[1], b.Size, b.Size)
		}
	}
}

func TestPushBusyboxThenResolve(t *testing.T) {
	t.Parallel()
	r := regtest.Start(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	l := readBusyboxLayout(t)
	open := openLayout(t)
	ref := mustRef(t, r.Host+"/pushed/busybox:v1")

	log := newProgressLog()
	if err := c.Push(ctx, ref, l.manifest, l.manifestBytes, l.blobs, open, log.record, nil); err != nil {
		t.Fatalf("Push: %v", err)
	}
	// The config is small enough for one "Pushing" report; the layer
	// (megabytes) has several, which record() folds into one.
	log.final(t, l.blobs, "Pushing", "Pushed")

	res, err := c.Resolve(ctx, ref, hostPlatform(), nil)
	if err != nil {
		t.Fatalf("Resolve after Push: %v", err)
	}
	if res.Manifest.Digest != l.manifest.Digest || !bytes.Equal(res.ManifestBytes, l.manifestBytes) {
		t.Fatalf("Resolve after Push = %s, pushed %s", res.Manifest.Digest, l.manifest.Digest)
	}
	layer := res.Parsed.Layers[0]
	if got := fetchAll(t, c, ctx, res.Ref, layer, 0, nil); !bytes.Equal(got, layoutBlob(t, layer.Digest)) {
		t.Fatalf("layer pushed and fetched back differs")
	}

	// Again, under another tag: nothing to upload.
	log = newProgressLog()
	if err := c.Push(ctx, ref.WithTag("v2"), l.manifest, l.manifestBytes, l.blobs, open, log.record, nil); err != nil {
		t.Fatalf("second Push: %v", err)
	}
	log.final(t, l.blobs, "Layer already exists")

	// Into another repository, mounting from the first.
	log = newProgressLog()
	other := mustRef(t, r.Host+"/other/busybox:latest")
	err = c.Upload(ctx, other, registry.PushSpec{
		Root:      registry.Manifest{Descriptor: l.manifest, Bytes: l.manifestBytes},
		Blobs:     l.blobs,
		Open:      open,
		MountFrom: []string{"pushed/busybox"},
		Progress:  log.record,
	}, nil)
	if err != nil {
		t.Fatalf("Upload with mounts: %v", err)
	}
	log.final(t, l.blobs, "Mounted from pushed/busybox")
	if res, err := c.Resolve(ctx, other, hostPlatform(), nil); err != nil || res.Manifest.Digest != l.manifest.Digest {
		t.Fatalf("Resolve after the mounted push: %v", err)
	}

	// By digest only: the manifest is stored but no tag is made.
	byDigest := mustRef(t, r.Host+"/bydigest/busybox@"+l.manifest.Digest.String())
	if err := c.Push(ctx, byDigest, l.manifest, l.manifestBytes, l.blobs, open, nil, nil); err != nil {
		t.Fatalf("Push by digest: %v", err)
	}
	if _, err := c.Resolve(ctx, byDigest, hostPlatform(), nil); err != nil {
		t.Fatalf("Resolve by digest after Push: %v", err)
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	t.Parallel()
	r := regtest.Start(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	l := readBusyboxLayout(t)
	ref := mustRef(t, r.Host+"/bad/busybox:v1")

	tampered := append([]byte(nil), l.manifestBytes...)
	tampered[len(tampered)-2] ^= 1
	err := c.Push(ctx, ref, l.manifest, tampered, l.blobs, openLayout(t), nil, nil)
	if !errors.Is(err, registry.ErrInvalidManifest) || !strings.Contains(err.Error(), l.manifest.Digest.String()) {
		t.Errorf("Push of bytes that do not match the descriptor: %v, want ErrInvalidManifest naming the digest", err)
	}
	if _, err := c.Resolve(ctx, ref, hostPlatform(), nil); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a refused push left something behind: %v", err)
	}

	// A blob that is not what its descriptor says: the registry refuses
	// the upload and Push reports it.
	lying := append([]ocispec.Descriptor(nil), l.blobs...)
	lying[0].Digest = digest.FromString("something else")
	open := func(d ocispec.Descriptor) (io.ReadCloser, error) {
		if d.Digest == lying[0].Digest {
			d = l.blobs[0] // the config's bytes under another digest
		}
		return openLayout(t)(d)
	}
	err = c.Push(ctx, ref, l.manifest, l.manifestBytes, lying, open, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "digest invalid") {
		t.Fatalf("Push of a blob under the wrong digest: %v, want the registry's refusal", err)
	}
}

func TestPushTokenAuth(t *testing.T) {
	t.Parallel()
	r := regtest.Start(t, regtest.WithTokenAuth("carol", "pw"))
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	l := readBusyboxLayout(t)
	ref := mustRef(t, r.Host+"/carol/busybox:latest")

	err := c.Push(ctx, ref, l.manifest, l.manifestBytes, l.blobs, openLayout(t), nil, nil)
	if !errors.Is(err, registry.ErrUnauthorized) || !strings.HasPrefix(err.Error(), "push access denied for "+r.Host+"/carol/busybox") {
		t.Fatalf("anonymous Push: %v, want ErrUnauthorized", err)
	}
	auth := &registry.Auth{Username: "carol", Password: "pw"}
	if err := c.Push(ctx, ref, l.manifest, l.manifestBytes, l.blobs, openLayout(t), nil, auth); err != nil {
		t.Fatalf("Push with credentials: %v", err)
	}
	res, err := c.Resolve(ctx, ref, hostPlatform(), auth)
	if err != nil || res.Manifest.Digest != l.manifest.Digest {
		t.Fatalf("Resolve after Push: %v", err)
	}
}
