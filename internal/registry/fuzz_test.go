package registry

import (
	"errors"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzParseReference: any input either fails with ErrInvalidReference or
// gives a reference whose normalised form parses back to itself.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "user/app:1", "127.0.0.1:5000/x@" + digest.FromString("x").String(),
		"busybox:1@" + digest.FromString("y").String(), "[::1]:5000/a", "Busybox", "a//b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("ParseReference(%q): %v without ErrInvalidReference", s, err)
			}
			return
		}
		again, err := ParseReference(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseReference(%q) = %s, which parses to %v, %v", s, r, again, err)
		}
	})
}

// FuzzManifest: a manifest body from a registry never panics the parser,
// and what it accepts has valid descriptors.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+digest.FromString("c").String()+`","size":1},"layers":[]}`), "")
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+digest.FromString("m").String()+`","size":2,"platform":{"os":"linux","architecture":"arm64"}}]}`), "application/json")
	f.Add([]byte(`{"schemaVersion":1,"fsLayers":[]}`), mediaTypeDockerSchema1JWS)
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:zz","size":-1}}`), MediaTypeDockerManifest)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		mt, err := manifestMediaType(body, contentType)
		if err != nil {
			return
		}
		m := &rawManifest{desc: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}, bytes: body}
		if isIndexType(mt) {
			idx, err := parseIndex("x", m)
			if err != nil {
				if !errors.Is(err, ErrInvalidManifest) {
					t.Fatalf("parseIndex: %v without ErrInvalidManifest", err)
				}
				return
			}
			for _, d := range idx.Manifests {
				if d.Digest.Validate() != nil || d.Size < 0 {
					t.Fatalf("accepted index entry %+v", d)
				}
			}
			pickManifest(idx.Manifests, NormalizePlatform(ocispec.Platform{}))
			availablePlatforms(idx.Manifests)
			return
		}
		mf, err := parseManifest("x", m)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("parseManifest: %v without ErrInvalidManifest", err)
			}
			return
		}
		if mf.Config.Digest.Validate() != nil || mf.Config.Size < 0 {
			t.Fatalf("accepted config %+v", mf.Config)
		}
	})
}
