package images

import (
	"fmt"
	"testing"

	"github.com/berth-project/berth/test/fixture"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Busybox returns the OCI layout of test/fixture's busybox image: the
// busybox-static rootfs with /bin/probe as one gzip layer, Cmd
// ["/bin/sh"], for this machine's architecture; index.json names it
// "latest" and docker.io/berth/busybox:latest. The other images build on
// its layer, so a pull of them after it finds the layer already there.
// Cached and shared: do not modify.
func Busybox(t testing.TB) string {
	t.Helper()
	return fixture.ImageLayout(t)
}

// baseImage is a single-platform image of a layout, read and checked.
type baseImage struct {
	layout   string
	desc     ocispec.Descriptor // the manifest
	manifest ocispec.Manifest
	config   dockerspec.DockerOCIImage
}

// readBase reads the image a layout's index.json names.
func readBase(layout string) (*baseImage, error) {
	desc, err := topManifest(layout)
	if err != nil {
		return nil, err
	}
	b := &baseImage{layout: layout, desc: desc}
	if err := readJSONBlob(layout, desc, &b.manifest); err != nil {
		return nil, err
	}
	if err := readJSONBlob(layout, b.manifest.Config, &b.config); err != nil {
		return nil, err
	}
	if len(b.manifest.Layers) != len(b.config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s in %s: %d layers, %d diff IDs", desc.Digest, layout, len(b.manifest.Layers), len(b.config.RootFS.DiffIDs))
	}
	return b, nil
}
