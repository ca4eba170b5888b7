package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func registryAuth(a *Auth) *registry.Auth {
	if a == nil || *a == (Auth{}) {
		return nil
	}
	return &registry.Auth{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

// Pull fetches ref for the platform asked for (the host's by default),
// unpacks its layers, and names it ref.
func (s *Service) Pull(ctx context.Context, refStr string, opts PullOptions) (*Image, error) {
	img, err := s.pull(ctx, refStr, opts)
	if err != nil {
		// What a failed pull stored (its manifest, the layers it did
		// commit) is reachable from no image: take it away again, so a
		// failure leaves the store as it was. Partial downloads stay for
		// the next attempt to resume.
		s.gc.Lock()
		_, gcErr := s.collect(context.WithoutCancel(ctx))
		s.gc.Unlock()
		if gcErr != nil {
			err = errors.Join(err, gcErr)
		}
	}
	return img, err
}

func (s *Service) pull(ctx context.Context, refStr string, opts PullOptions) (*Image, error) {
	ref, err := registry.ParseReference(refStr)
	if err != nil {
		return nil, classify(ErrInvalid, err)
	}
	platform := hostPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	auth := registryAuth(opts.Auth)
	s.gc.RLock()
	defer s.gc.RUnlock()

	tagOrDigest := ref.Tag()
	if d := ref.Digest(); d != "" {
		tagOrDigest = d.String()
	}
	res, err := s.registry.Resolve(ctx, ref, platform, auth)
	if err != nil {
		return nil, fromRegistry(err)
	}
	m, err := parseManifest(res.ManifestBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if res.Index != nil {
		if err := s.content.Put(ctx, *res.Index, bytes.NewReader(res.IndexBytes)); err != nil {
			return nil, err
		}
	}
	if err := s.content.Put(ctx, res.Manifest, bytes.NewReader(res.ManifestBytes)); err != nil {
		return nil, err
	}
	fetch := func(desc ocispec.Descriptor) content.OpenFunc {
		return func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			rc, err := s.registry.Fetch(ctx, res.Ref, desc, offset, auth)
			return rc, fromRegistry(err)
		}
	}
	if m.Config.Size > maxConfigSize {
		return nil, fmt.Errorf("%s: config %s is %d bytes, over the %d-byte limit", ref, m.Config.Digest, m.Config.Size, maxConfigSize)
	}
	if err := s.ingest(ctx, m.Config, fetch(m.Config)); err != nil {
		return nil, fmt.Errorf("%s: config: %w", ref, err)
	}
	cfg, err := s.readConfig(m.Config)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the manifest has %d layers but the config %d diff IDs", ref, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	if cfg.OS != "" && cfg.OS != platform.OS {
		return nil, classify(ErrNoPlatform, fmt.Errorf("image operating system %q cannot be used on this platform (%s)", cfg.OS, platform.OS))
	}
	// A single-platform image asked for by platform must be that platform
	// (an index was already matched by the registry client).
	if opts.Platform != nil && res.Index == nil && !platformMatches(cfg.Platform, platform) {
		return nil, classify(ErrNoPlatform, fmt.Errorf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)",
			ref.Familiar(), registry.FormatPlatform(cfg.Platform), registry.FormatPlatform(platform)))
	}
	// Only now, as docker: an image that is not there, or not for this
	// platform, is a plain error rather than a progress stream ending in one.
	progress(Progress{ID: tagOrDigest, Status: "Pulling from " + ref.Path()})

	layers := make([]layerSource, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = layerSource{desc: l, diffID: cfg.RootFS.DiffIDs[i], open: fetch(l)}
	}
	if err := s.unpack(ctx, layers, progress); err != nil {
		return nil, err
	}

	id := m.Config.Digest
	target := res.Manifest
	names := []string{}
	if ref.Digest() == "" {
		names = append(names, ref.Name()+":"+ref.Tag())
	}
	// The repo digest is what the user's reference resolved to: the index
	// for a multi-platform image, as docker shows it.
	repoDigest := res.Manifest.Digest
	if res.Index != nil {
		repoDigest = res.Index.Digest
	}
	names = append(names, ref.Name()+"@"+repoDigest.String())
	upToDate, err := s.record(id, target, res.Index, names)
	if err != nil {
		return nil, err
	}
	progress(Progress{Status: "Digest: " + repoDigest.String()})
	if upToDate {
		progress(Progress{Status: "Status: Image is up to date for " + ref.Familiar()})
	} else {
		progress(Progress{Status: "Status: Downloaded newer image for " + ref.Familiar()})
	}
	return s.Get(ctx, id.String())
}

// ingest makes sure the blob desc is in the content store.
func (s *Service) ingest(ctx context.Context, desc ocispec.Descriptor, open content.OpenFunc) error {
	rc, err := s.content.Ingest(ctx, desc, open)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// record stores the image id reached through target and points names at
// it. It reports whether every name already pointed at id.
func (s *Service) record(id digest.Digest, target ocispec.Descriptor, index *ocispec.Descriptor, names []string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	upToDate := true
	err := s.meta.update(func(b buckets) error {
		var rec record
		found, err := getJSON(b.images, id.String(), &rec)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if !found {
			rec = record{Target: target, Index: index, Pulled: now}
			upToDate = false
		}
		for _, n := range names {
			if string(b.names.Get([]byte(n))) != id.String() {
				upToDate = false
				if err := b.names.Put([]byte(n), []byte(id)); err != nil {
					return err
				}
				rec.Tagged = now
			}
		}
		return putJSON(b.images, id.String(), rec)
	})
	return upToDate, err
}

// platformMatches reports whether an image's platform is the one asked
// for; a variant counts only when both name one.
func platformMatches(have, want ocispec.Platform) bool {
	have, want = registry.NormalizePlatform(have), registry.NormalizePlatform(want)
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	return have.Variant == "" || want.Variant == "" || have.Variant == want.Variant
}
