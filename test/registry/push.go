package registry

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push pushes the OCI image layout at layoutDir to repoTag on the registry
// ("repo:tag", without the host) with go-containerregistry, an
// independent client, so tests of berth's client start from images berth
// did not write. A layout whose index.json holds one manifest pushes that
// image (or that index); one holding several pushes index.json itself as a
// multi-platform index. It returns the descriptor the tag points at.
func (r *Registry) Push(t testing.TB, layoutDir, repoTag string) ocispec.Descriptor {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.StrictValidation)
	if err != nil {
		t.Fatalf("registry push: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("registry push: read layout %s: %v", layoutDir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("registry push: index of %s: %v", layoutDir, err)
	}
	opts := []remote.Option{remote.WithAuth(r.authenticator())}
	var desc v1.Descriptor
	switch {
	case len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsImage():
		img, err := idx.Image(im.Manifests[0].Digest)
		if err == nil {
			err = remote.Write(ref, img, opts...)
		}
		desc = im.Manifests[0]
		if err != nil {
			t.Fatalf("registry push %s to %s: %v", layoutDir, ref, err)
		}
	case len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex():
		child, err := idx.ImageIndex(im.Manifests[0].Digest)
		if err == nil {
			err = remote.WriteIndex(ref, child, opts...)
		}
		desc = im.Manifests[0]
		if err != nil {
			t.Fatalf("registry push %s to %s: %v", layoutDir, ref, err)
		}
	default:
		if err := remote.WriteIndex(ref, idx, opts...); err != nil {
			t.Fatalf("registry push %s to %s: %v", layoutDir, ref, err)
		}
		d, err1 := idx.Digest()
		size, err2 := idx.Size()
		mt, err3 := idx.MediaType()
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("registry push %s: describe index: %v %v %v", layoutDir, err1, err2, err3)
		}
		desc = v1.Descriptor{MediaType: mt, Digest: d, Size: size}
	}
	return ocispec.Descriptor{
		MediaType: string(desc.MediaType),
		Digest:    digest.Digest(desc.Digest.String()),
		Size:      desc.Size,
	}
}

// authenticator is the registry's credentials for go-containerregistry.
func (r *Registry) authenticator() authn.Authenticator {
	if r.User == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.User, Password: r.Password}
}

// WriteImage pushes img (built with go-containerregistry's mutate, random
// or empty packages) to repoTag, for tests that need images the busybox
// fixture does not give.
func (r *Registry) WriteImage(t testing.TB, img v1.Image, repoTag string) {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.StrictValidation)
	if err != nil {
		t.Fatalf("registry write: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(r.authenticator())); err != nil {
		t.Fatalf("registry write %s: %v", ref, err)
	}
}

// WriteIndex pushes an index and its images to repoTag.
func (r *Registry) WriteIndex(t testing.TB, idx v1.ImageIndex, repoTag string) {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.StrictValidation)
	if err != nil {
		t.Fatalf("registry write: %v", err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(r.authenticator())); err != nil {
		t.Fatalf("registry write %s: %v", ref, err)
	}
}
