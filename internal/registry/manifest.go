package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize caps manifests and indexes, read or pushed: 4 MiB, as
// containerd and docker do. Without a cap a registry could make berth
// buffer any amount of memory before the digest check (CVE-2024-3727).
const MaxManifestSize = 4 << 20

// Media types of the manifests berth reads. Docker's schema 2 types carry
// the same JSON as the OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// acceptManifests is the Accept header of manifest requests: both
// families, indexes first so a registry returns the index of a
// multi-platform image rather than picking a platform itself. Schema 1 is
// absent on purpose.
var acceptManifests = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifest,
}, ", ")

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// rawManifest is a manifest or index as read from a registry, verified
// against its digest.
type rawManifest struct {
	desc  ocispec.Descriptor
	bytes []byte
}

// fetchManifest GETs the manifest or index ident (a tag or a digest) and
// checks it: at most MaxManifestSize bytes; when ident is a digest, bytes
// hashing to it; otherwise bytes hashing to the Docker-Content-Digest the
// registry sent, when it sent one; a media type berth reads.
func (c *Client) fetchManifest(ctx context.Context, s *session, ref Reference, ident string) (*rawManifest, error) {
	u := s.url("manifests", ident)
	resp, err := s.do(ctx, http.MethodGet, u, http.Header{"Accept": {acceptManifests}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, err
	}
	name := ref.Familiar()
	if resp.ContentLength > MaxManifestSize {
		return nil, invalidManifest(name, "manifest %s of %s is %d bytes, more than the %d allowed", ident, name, resp.ContentLength, MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read manifest: %w", u, err)
	}
	if len(body) > MaxManifestSize {
		return nil, invalidManifest(name, "manifest %s of %s is more than the %d bytes allowed", ident, name, MaxManifestSize)
	}
	want, byDigest := digest.Digest(""), false
	if d, err := digest.Parse(ident); err == nil {
		want, byDigest = d, true
	} else if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if d, err := digest.Parse(h); err == nil && d.Algorithm().Available() {
			want = d
		}
	}
	got := digest.FromBytes(body)
	if want != "" {
		got = want.Algorithm().FromBytes(body)
		if got != want {
			what := "the Docker-Content-Digest header"
			if byDigest {
				what = "the requested digest"
			}
			return nil, invalidManifest(name, "manifest %s of %s does not match %s: got %s, want %s", ident, name, what, got, want)
		}
	}
	mt, err := manifestMediaType(body, resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, invalidManifest(name, "manifest %s of %s: %v", ident, name, err)
	}
	return &rawManifest{
		desc:  ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(body))},
		bytes: body,
	}, nil
}

func invalidManifest(name, format string, args ...any) error {
	return &Error{Kind: ErrInvalidManifest, Ref: name, msg: fmt.Sprintf(format, args...)}
}

// manifestMediaType decides what a manifest is. The mediaType field is
// covered by the digest and wins over the Content-Type header; without
// either, the shape decides. Schema 1 is refused whichever way it shows.
func manifestMediaType(body []byte, contentType string) (string, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	if probe.SchemaVersion == 1 || probe.FSLayers != nil || ct == mediaTypeDockerSchema1 || ct == mediaTypeDockerSchema1JWS || probe.MediaType == mediaTypeDockerSchema1 || probe.MediaType == mediaTypeDockerSchema1JWS {
		return "", fmt.Errorf("docker image manifest schema 1 is not supported (docker removed it too): push the image again with a current client")
	}
	if probe.SchemaVersion != 2 {
		return "", fmt.Errorf("schemaVersion %d, want 2", probe.SchemaVersion)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = ct
	}
	if isManifestType(mt) || isIndexType(mt) {
		return mt, nil
	}
	if probe.MediaType != "" {
		return "", fmt.Errorf("unsupported media type %q", probe.MediaType)
	}
	// An OCI manifest may omit mediaType, and a generic Content-Type
	// (application/json) then says nothing: the shape decides.
	switch {
	case probe.Manifests != nil && probe.Config == nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil && probe.Manifests == nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("unsupported media type %q", ct)
}

// parseIndex decodes an index and checks each entry's descriptor.
func parseIndex(name string, m *rawManifest) (*ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(m.bytes, &idx); err != nil {
		return nil, invalidManifest(name, "index %s of %s: %v", m.desc.Digest, name, err)
	}
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return nil, invalidManifest(name, "index %s of %s: manifests[%d]: %v", m.desc.Digest, name, i, err)
		}
	}
	return &idx, nil
}

// parseManifest decodes an image manifest and checks its descriptors.
func parseManifest(name string, m *rawManifest) (ocispec.Manifest, error) {
	var mf ocispec.Manifest
	if err := json.Unmarshal(m.bytes, &mf); err != nil {
		return mf, invalidManifest(name, "manifest %s of %s: %v", m.desc.Digest, name, err)
	}
	if mf.MediaType == "" {
		mf.MediaType = m.desc.MediaType
	}
	if err := checkDescriptor(mf.Config); err != nil {
		return mf, invalidManifest(name, "manifest %s of %s: config: %v", m.desc.Digest, name, err)
	}
	for i, l := range mf.Layers {
		if err := checkDescriptor(l); err != nil {
			return mf, invalidManifest(name, "manifest %s of %s: layers[%d]: %v", m.desc.Digest, name, i, err)
		}
	}
	return mf, nil
}

// checkDescriptor refuses descriptors nothing could be fetched or
// verified with.
func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size %d", d.Digest, d.Size)
	}
	if d.MediaType == "" {
		return fmt.Errorf("%s: no mediaType", d.Digest)
	}
	return nil
}
