package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/test/registry"
	digest "github.com/opencontainers/go-digest"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: overlay snapshots and chown")
	}
}

// newStore opens an image store in a fresh directory on tmpfs (the disk
// here is slow for file creation) and closes it when the test ends.
func newStore(t *testing.T, edit ...func(*image.Config)) (*image.Service, string) {
	t.Helper()
	needRoot(t)
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "berth-image-test-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := image.Config{Root: filepath.Join(dir, "image")}
	for _, e := range edit {
		e(&cfg)
	}
	svc, err := image.New(cfg)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove store: %v", err)
		}
	})
	return svc, cfg.Root
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// mountImage mounts a read-only view of img's layers and returns where.
func mountImage(t *testing.T, svc *image.Service, img *image.Image) string {
	t.Helper()
	top := img.Layers[len(img.Layers)-1].ChainID.String()
	key := "view-" + digest.FromString(t.Name()).Encoded()[:12]
	mounts, err := svc.Snapshotter().View(context.Background(), key, top, nil)
	if err != nil {
		t.Fatalf("view %s: %v", top, err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatalf("mount view: %v", err)
	}
	t.Cleanup(func() {
		if err := snapshot.Unmount(target); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if err := svc.Snapshotter().Remove(context.Background(), key); err != nil {
			t.Errorf("remove view: %v", err)
		}
	})
	return target
}

// progressLog collects progress lines.
type progressLog struct {
	lines chan image.Progress
}

func newProgressLog() *progressLog { return &progressLog{lines: make(chan image.Progress, 10000)} }

func (p *progressLog) fn(pr image.Progress) { p.lines <- pr }

func (p *progressLog) statuses() []string {
	var out []string
	for {
		select {
		case l := <-p.lines:
			out = append(out, l.Status)
		default:
			return out
		}
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// blobFiles lists the committed blobs and partial downloads of a store.
func blobFiles(t *testing.T, root string) (blobs, partials []string) {
	t.Helper()
	filepath.Walk(filepath.Join(root, "content"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case strings.Contains(rel, "/blobs/"):
			blobs = append(blobs, rel)
		case strings.Contains(rel, "/ingest/"):
			partials = append(partials, rel)
		}
		return nil
	})
	return blobs, partials
}

// registryBlob returns the file a docker-registry stores blob d in.
func registryBlob(reg *registry.Registry, d digest.Digest) string {
	return filepath.Join(reg.Dir, "storage", "docker", "registry", "v2", "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data")
}

var _ = bytes.NewReader

type snapshotInfo = snapshot.Info

// readLayout reads the manifest of the one image in an OCI layout.
func readLayout(t *testing.T, layout string) *ocispec.Manifest {
	t.Helper()
	var index ocispec.Index
	readJSON(t, filepath.Join(layout, "index.json"), &index)
	var m ocispec.Manifest
	d := index.Manifests[0].Digest
	readJSON(t, filepath.Join(layout, "blobs", "sha256", d.Encoded()), &m)
	return &m
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
