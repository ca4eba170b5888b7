package images

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pushTimeout bounds a Push, so a registry that stops answering fails the
// test instead of hanging it.
const pushTimeout = 10 * time.Minute

// Push uploads the image or index a layout's index.json names to ref
// ("127.0.0.1:5000/berth-test/busybox:latest"), with its manifests,
// configs and layers byte for byte, so the registry serves the layout's
// digests. Registries on localhost or a loopback address are spoken to
// over plain HTTP, others over HTTPS; no credentials are sent.
func Push(layoutDir, ref string) error {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("push to %q: %w", ref, err)
	}
	if isLoopback(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.StrictValidation, name.Insecure); err != nil {
			return fmt.Errorf("push to %q: %w", ref, err)
		}
	}
	top, err := topManifest(layoutDir)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return fmt.Errorf("open layout %s: %w", layoutDir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return fmt.Errorf("open layout %s: %w", layoutDir, err)
	}
	h, err := v1.NewHash(top.Digest.String())
	if err != nil {
		return fmt.Errorf("layout %s: %w", layoutDir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	switch mt := types.MediaType(top.MediaType); {
	case mt.IsIndex():
		idx, err := ii.ImageIndex(h)
		if err != nil {
			return fmt.Errorf("layout %s: index %s: %w", layoutDir, top.Digest, err)
		}
		err = remote.WriteIndex(r, idx, remote.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("push index %s to %s: %w", top.Digest, r, err)
		}
	case mt.IsImage():
		img, err := ii.Image(h)
		if err != nil {
			return fmt.Errorf("layout %s: image %s: %w", layoutDir, top.Digest, err)
		}
		if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push image %s to %s: %w", top.Digest, r, err)
		}
	default:
		return fmt.Errorf("layout %s: %s has media type %q, neither an image nor an index", layoutDir, top.Digest, top.MediaType)
	}
	return nil
}

// isLoopback reports whether a registry host[:port] is this machine.
func isLoopback(registry string) bool {
	host, _, err := net.SplitHostPort(registry)
	if err != nil {
		host = registry
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
