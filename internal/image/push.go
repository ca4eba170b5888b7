package image

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads the image ref names to the registry ref points at: the
// blobs the registry lacks, then the manifest. Foreign layers stay where
// they are, as docker leaves them.
func (s *Service) Push(ctx context.Context, refStr string, opts PushOptions) error {
	ref, err := registry.ParseReference(refStr)
	if err != nil {
		return classify(ErrInvalid, err)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	img, err := s.Get(ctx, refStr)
	if err != nil {
		return classify(ErrNotFound, fmt.Errorf("An image does not exist locally with the tag: %s", ref.Familiar()))
	}
	manifest, err := s.content.ReadBlob(img.Target, maxManifestSize)
	if err != nil {
		return err
	}
	m, err := parseManifest(manifest)
	if err != nil {
		return err
	}
	progress(Progress{Status: "The push refers to repository [" + familiarRepo(ref) + "]"})
	var blobs []ocispec.Descriptor
	for _, l := range m.Layers {
		if isForeign(l.MediaType) {
			continue
		}
		blobs = append(blobs, l)
	}
	blobs = append(blobs, m.Config)
	open := func(d ocispec.Descriptor) (io.ReadCloser, error) { return s.content.Open(d.Digest) }
	report := func(d ocispec.Descriptor, status string, cur, total int64) {
		if d.Digest == m.Config.Digest {
			return // docker shows layers only
		}
		progress(Progress{ID: shortID(d.Digest), Status: status, Current: cur, Total: total})
	}
	if err := s.registry.Push(ctx, ref, img.Target, manifest, blobs, open, report, registryAuth(opts.Auth)); err != nil {
		return fromRegistry(err)
	}
	progress(Progress{Status: fmt.Sprintf("%s: digest: %s size: %d", ref.Tag(), img.Target.Digest, img.Target.Size)})
	return nil
}

func isForeign(mt string) bool {
	switch mt {
	case mediaTypeDockerForeignLayer, ocispec.MediaTypeImageLayerNonDistributable, //nolint:staticcheck
		ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return true
	}
	return false
}

// familiarRepo is the repository as docker push names it:
// docker.io/library/busybox, 127.0.0.1:5000/x.
func familiarRepo(ref registry.Reference) string { return ref.Name() }
