package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Resolved is what a reference named on a registry, for one platform.
type Resolved struct {
	// Ref is the reference asked for, pinned to the digest of what the
	// registry served for it (the index when there was one).
	Ref Reference
	// Index and IndexBytes are the index (manifest list) the reference
	// named, nil when it named a manifest directly.
	Index      *ocispec.Descriptor
	IndexBytes []byte
	// Manifest is the image manifest for the platform: the index's entry
	// (with its platform) or the descriptor of what the reference named.
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	// Parsed is Manifest decoded; docker schema 2 manifests decode into
	// the same struct and keep their media types.
	Parsed ocispec.Manifest
	// Config is Parsed.Config.
	Config ocispec.Descriptor
}

// Resolve finds the manifest ref names for platform (see NormalizePlatform
// for the defaults and how variants match). For docker.io references the
// mirrors are asked first; a mirror's failure moves on to the next, and
// the last endpoint's error is returned. An index without a match is an
// error wrapping ErrNoMatchingPlatform that lists the platforms it has.
func (c *Client) Resolve(ctx context.Context, ref Reference, platform ocispec.Platform, auth *Auth) (*Resolved, error) {
	if ref.IsZero() {
		return nil, &Error{Kind: ErrInvalidReference, msg: "resolve: empty reference"}
	}
	var err error
	for _, ep := range c.endpoints(ctx, ref) {
		var r *Resolved
		r, err = c.resolveAt(ctx, ep, ref, platform, auth)
		if err == nil {
			return r, nil
		}
		// A mirror that served the index answered the question; other
		// mirror failures are the mirror's problem.
		if ctx.Err() != nil || !ep.mirror || errors.Is(err, ErrNoMatchingPlatform) {
			return nil, err
		}
	}
	return nil, err
}

func (c *Client) resolveAt(ctx context.Context, ep endpoint, ref Reference, platform ocispec.Platform, auth *Auth) (*Resolved, error) {
	name := ref.Familiar()
	var root *rawManifest
	var s *session
	err := c.withRetry(ctx, func() error {
		var err error
		if s, err = c.session(ctx, ep, ref.Path(), false, nil, auth); err != nil {
			return classify(err, opPull, ref, "manifest")
		}
		root, err = c.fetchManifest(ctx, s, ref, ref.identifier())
		if err != nil {
			if isNetworkError(err) {
				c.forget(s)
			}
			return classify(err, opPull, ref, "manifest")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &Resolved{Ref: ref.WithDigest(root.desc.Digest)}
	mf := root
	if isIndexType(root.desc.MediaType) {
		idx, err := parseIndex(name, root)
		if err != nil {
			return nil, err
		}
		want := NormalizePlatform(platform)
		i := pickManifest(idx.Manifests, want)
		if i < 0 {
			return nil, &Error{Kind: ErrNoMatchingPlatform, Ref: name,
				msg: fmt.Sprintf("no matching manifest for %s in the manifest list entries of %s (available: %s)",
					FormatPlatform(want), name, strings.Join(availablePlatforms(idx.Manifests), ", "))}
		}
		entry := idx.Manifests[i]
		if entry.Size > MaxManifestSize {
			return nil, invalidManifest(name, "manifest %s of %s is %d bytes, more than the %d allowed", entry.Digest, name, entry.Size, MaxManifestSize)
		}
		rootDesc := root.desc
		r.Index, r.IndexBytes = &rootDesc, root.bytes
		err = c.withRetry(ctx, func() error {
			var err error
			mf, err = c.fetchManifest(ctx, s, ref, entry.Digest.String())
			if err != nil && isNetworkError(err) {
				c.forget(s)
			}
			return classify(err, opPull, ref, "manifest")
		})
		if err != nil {
			return nil, err
		}
		if mf.desc.Size != entry.Size {
			return nil, invalidManifest(name, "manifest %s of %s is %d bytes, the index says %d", entry.Digest, name, mf.desc.Size, entry.Size)
		}
		if !isManifestType(mf.desc.MediaType) {
			return nil, invalidManifest(name, "manifest %s of %s for %s is a %s, not an image manifest", entry.Digest, name, FormatPlatform(want), mf.desc.MediaType)
		}
		r.Manifest = entry
		// The index's entry says what the manifest is; the manifest's own
		// media type (verified by digest) is what it really is.
		r.Manifest.MediaType = mf.desc.MediaType
	} else {
		r.Manifest = root.desc
	}
	parsed, err := parseManifest(name, mf)
	if err != nil {
		return nil, err
	}
	r.ManifestBytes, r.Parsed, r.Config = mf.bytes, parsed, parsed.Config
	return r, nil
}
