package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-project/berth/internal/registry"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe a new image made from a parent image and one more
// layer: docker commit.
type CommitOptions struct {
	Parent digest.Digest // image ID; empty for an image from scratch
	// Layer is the new layer as an uncompressed tar with OCI whiteouts
	// (archive.Tar of a container's upper directory).
	Layer   io.Reader
	Config  dockerspec.DockerOCIImageConfig // the whole config of the new image
	Author  string
	Comment string
	// CreatedBy is the history line docker shows for the step.
	CreatedBy string
	Ref       string // name to give the image, optional
}

// Commit stores a new image: the parent's layers and config history, one
// more layer, and the config given.
func (s *Service) Commit(ctx context.Context, opts CommitOptions) (*Image, error) {
	var ref registry.Reference
	if opts.Ref != "" {
		var err error
		if ref, err = registry.ParseReference(opts.Ref); err != nil {
			return nil, classify(ErrInvalid, err)
		}
		if ref.Digest() != "" {
			return nil, invalidf("commit: cannot name an image with a digest reference: %s", opts.Ref)
		}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()

	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{}
	var layers []ocispec.Descriptor
	if opts.Parent != "" {
		parent, err := s.Get(ctx, opts.Parent.String())
		if err != nil {
			return nil, err
		}
		cfg = parent.Config
		for _, l := range parent.Layers {
			layers = append(layers, l.Blob)
		}
	} else {
		p := hostPlatform()
		cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	}
	cfg.Config = opts.Config
	cfg.Created = &now
	cfg.Author = opts.Author

	layer, diffID, err := s.compressLayer(ctx, opts.Layer)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	layers = append(layers, layer)
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: append(append([]digest.Digest(nil), cfg.RootFS.DiffIDs...), diffID)}
	cfg.History = append(append([]ocispec.History(nil), cfg.History...), ocispec.History{
		Created: &now, CreatedBy: opts.CreatedBy, Author: opts.Author, Comment: opts.Comment,
	})

	configData, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(configData), Size: int64(len(configData))}
	if err := s.content.Put(ctx, configDesc, bytes.NewReader(configData)); err != nil {
		return nil, err
	}
	manifestData, err := json.Marshal(ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	})
	if err != nil {
		return nil, err
	}
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifestData), Size: int64(len(manifestData))}
	if err := s.content.Put(ctx, target, bytes.NewReader(manifestData)); err != nil {
		return nil, err
	}
	sources := make([]layerSource, len(layers))
	for i, l := range layers {
		sources[i] = layerSource{desc: l, diffID: cfg.RootFS.DiffIDs[i]}
	}
	if err := s.unpack(ctx, sources, func(Progress) {}); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	var names []string
	if opts.Ref != "" {
		names = append(names, nameKey(ref))
	}
	if _, err := s.record(configDesc.Digest, target, nil, names); err != nil {
		return nil, err
	}
	return s.Get(ctx, configDesc.Digest.String())
}
