package registry_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/test/fixture"
	regtest "github.com/berth-project/berth/test/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxRepo is where seeded registries hold the busybox fixture.
const busyboxRepo = "berth/busybox"

// newClient makes a client whose config.json directory is empty unless
// cfg names one, so the credentials of whoever runs the tests stay out.
func newClient(t *testing.T, cfg registry.Config) *registry.Client {
	t.Helper()
	if cfg.DockerConfigDir == "" {
		cfg.DockerConfigDir = t.TempDir()
	}
	c, err := registry.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustRef(t *testing.T, s string) registry.Reference {
	t.Helper()
	r, err := registry.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// seeded starts a registry holding the busybox fixture at
// berth/busybox:latest; it returns the registry and the manifest's
// descriptor as go-containerregistry pushed it.
func seeded(t *testing.T, opts ...regtest.Option) (*regtest.Registry, ocispec.Descriptor) {
	t.Helper()
	layout := fixture.ImageLayout(t)
	r := regtest.Start(t, opts...)
	return r, r.Push(t, layout, busyboxRepo+":latest")
}

func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// layoutBlob reads a blob of the busybox fixture's layout.
func layoutBlob(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixture.ImageLayout(t), "blobs", d.Algorithm().String(), d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fetchAll fetches a blob from offset and reads it to its end.
func fetchAll(t *testing.T, c *registry.Client, ctx context.Context, ref registry.Reference, desc ocispec.Descriptor, offset int64, auth *registry.Auth) []byte {
	t.Helper()
	rc, err := c.Fetch(ctx, ref, desc, offset, auth)
	if err != nil {
		t.Fatalf("Fetch %s from %d: %v", desc.Digest, offset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s from %d: %v", desc.Digest, offset, err)
	}
	return b
}
