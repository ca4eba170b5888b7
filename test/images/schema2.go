package images

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// schema2Version changes whenever the DockerSchema2 recipe changes.
const schema2Version = "schema2-1"

// Docker's media types (distribution's schema2), which registries and
// older builders still write.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Schema2Name is the DockerSchema2 image's name in its index.json.
const Schema2Name = "docker.io/berth-test/schema2:latest"

var schema2Mu sync.Mutex

// DockerSchema2 returns the OCI layout of the busybox image re-encoded
// with Docker's media types: a schema2 manifest
// (MediaTypeDockerManifest), its config as MediaTypeDockerConfig and its
// layer as MediaTypeDockerLayer. The config and layer bytes are busybox's,
// so the image ID (the config digest) is Busybox's too, as it is when
// docker and buildkit write the same image both ways; only the manifest
// differs. index.json names it "latest" and Schema2Name. Cached and
// shared: do not modify.
func DockerSchema2(t testing.TB) string {
	t.Helper()
	base := Busybox(t)
	schema2Mu.Lock()
	defer schema2Mu.Unlock()
	dir, err := buildSchema2(base)
	check(t, "docker schema2 image", err)
	return filepath.Join(dir, "layout")
}

func buildSchema2(busybox string) (string, error) {
	base, err := readBase(busybox)
	if err != nil {
		return "", fmt.Errorf("read busybox image: %w", err)
	}
	return cached("schema2", cacheKey(schema2Version, base.desc.Digest.String()), func(dir string) error {
		return writeSchema2(filepath.Join(dir, "layout"), base)
	})
}

func writeSchema2(dir string, base *baseImage) error {
	l, err := newLayout(dir)
	if err != nil {
		return err
	}
	config := base.manifest.Config
	if err := l.copyBlob(base.layout, config); err != nil {
		return err
	}
	config.MediaType = MediaTypeDockerConfig
	var layers []ocispec.Descriptor
	for _, d := range base.manifest.Layers {
		if d.MediaType != ocispec.MediaTypeImageLayerGzip {
			return fmt.Errorf("busybox layer %s: media type %s, want gzip", d.Digest, d.MediaType)
		}
		if err := l.copyBlob(base.layout, d); err != nil {
			return err
		}
		layers = append(layers, ocispec.Descriptor{MediaType: MediaTypeDockerLayer, Digest: d.Digest, Size: d.Size})
	}
	// Schema2 has the OCI manifest's shape: schemaVersion, mediaType,
	// config, layers.
	desc, err := l.json(MediaTypeDockerManifest, ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: MediaTypeDockerManifest,
		Config:    config,
		Layers:    layers,
	})
	if err != nil {
		return err
	}
	desc.Platform = base.desc.Platform
	desc.Annotations = map[string]string{annotationRefName: "latest", annotationCtrName: Schema2Name}
	return l.finish(desc)
}
