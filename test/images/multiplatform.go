package images

import (
	"archive/tar"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// multiVersion changes whenever the MultiPlatform recipe changes.
const multiVersion = "multi-1"

// MultiName is the MultiPlatform index's name in its index.json.
const MultiName = "docker.io/berth-test/multi:latest"

var multiTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// Annotations buildx puts on the index entry of an attestation manifest:
// the platform image it attests and what it is.
const (
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	AttestationManifest       = "attestation-manifest"
)

// MultiPlatforms returns the platforms of MultiPlatform's images, in index
// order.
func MultiPlatforms() []ocispec.Platform {
	return []ocispec.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
	}
}

// PlatformString is the content of /platform in MultiPlatform's image for
// p, without its trailing newline: "linux/arm64/v8".
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

var multiMu sync.Mutex

// MultiPlatform returns the OCI layout of a multi-platform image:
// index.json names (as "latest" and MultiName) an image index of three
// images, one per MultiPlatforms entry, each with a layer holding
// /platform ("linux/arm64/v8\n"), and after them an attestation manifest
// as buildx writes it (platform unknown/unknown, annotated
// vnd.docker.reference.type=attestation-manifest, an in-toto provenance
// layer) that platform selection must skip. The image for this machine's
// architecture (linux/amd64 here) has busybox's layer beneath its own, so
// it runs: Cmd ["cat", "/platform"]. The others are a single layer and
// run nowhere. Cached and shared: do not modify.
func MultiPlatform(t testing.TB) string {
	t.Helper()
	base := Busybox(t)
	multiMu.Lock()
	defer multiMu.Unlock()
	dir, err := buildMulti(base)
	check(t, "multi-platform image", err)
	return filepath.Join(dir, "layout")
}

func buildMulti(busybox string) (string, error) {
	base, err := readBase(busybox)
	if err != nil {
		return "", fmt.Errorf("read busybox image: %w", err)
	}
	return cached("multi", cacheKey(multiVersion, runtime.GOARCH, base.desc.Digest.String()), func(dir string) error {
		return writeMulti(filepath.Join(dir, "layout"), base)
	})
}

func writeMulti(dir string, base *baseImage) error {
	l, err := newLayout(dir)
	if err != nil {
		return err
	}
	var manifests []ocispec.Descriptor
	for _, p := range MultiPlatforms() {
		desc, err := writePlatformImage(l, base, p)
		if err != nil {
			return fmt.Errorf("image for %s: %w", PlatformString(p), err)
		}
		manifests = append(manifests, desc)
	}
	att, err := writeAttestation(l, manifests[0])
	if err != nil {
		return err
	}
	manifests = append(manifests, att)
	index := ocispec.Index{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	}
	desc, err := l.json(ocispec.MediaTypeImageIndex, index)
	if err != nil {
		return err
	}
	desc.Annotations = map[string]string{annotationRefName: "latest", annotationCtrName: MultiName}
	return l.finish(desc)
}

// writePlatformImage writes the image for p and returns its index entry.
func writePlatformImage(l *layoutWriter, base *baseImage, p ocispec.Platform) (ocispec.Descriptor, error) {
	created := multiTime
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	var history []ocispec.History
	if p.Architecture == runtime.GOARCH {
		if err := l.copyBlob(base.layout, base.manifest.Layers[0]); err != nil {
			return ocispec.Descriptor{}, err
		}
		layers = append(layers, base.manifest.Layers...)
		diffIDs = append(diffIDs, base.config.RootFS.DiffIDs...)
		history = append(history, base.config.History...)
	}
	content := PlatformString(p) + "\n"
	desc, diffID, err := l.layer(ocispec.MediaTypeImageLayerGzip, gzipped, func(tw *tar.Writer) error {
		return writeEntries(tw, []entry{fileEntry("platform", 0o644, content)}, multiTime)
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layers = append(layers, desc)
	diffIDs = append(diffIDs, diffID)
	history = append(history,
		ocispec.History{Created: &created, CreatedBy: "COPY platform /platform # buildkit", Comment: "buildkit.dockerfile.v0"},
		ocispec.History{Created: &created, CreatedBy: `CMD ["cat" "/platform"]`, Comment: "buildkit.dockerfile.v0", EmptyLayer: true},
	)
	config := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &created,
			Platform: p,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
			History:  history,
		},
		Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			Env: []string{fixture.DefaultPath},
			Cmd: []string{"cat", "/platform"},
		}},
	}
	configDesc, err := l.json(ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc, err := l.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc.Platform = &p
	return mdesc, nil
}

// writeAttestation writes the attestation manifest of the image subject,
// shaped like buildx's: a config of platform unknown/unknown and one
// in-toto statement as its layer, and returns its index entry.
func writeAttestation(l *layoutWriter, subject ocispec.Descriptor) (ocispec.Descriptor, error) {
	const predicateType = "https://slsa.dev/provenance/v0.2"
	statement := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject": []any{map[string]any{
			"name":   "pkg:docker/berth-test/multi@latest?platform=" + strings.ReplaceAll(PlatformString(*subject.Platform), "/", "%2F"),
			"digest": map[string]string{"sha256": subject.Digest.Encoded()},
		}},
		"predicate": map[string]any{
			"builder":   map[string]string{"id": ""},
			"buildType": "https://mobyproject.org/buildkit@v1",
			"metadata":  map[string]any{"buildInvocationID": "berth-test-images"},
		},
	}
	layer, err := l.json("application/vnd.in-toto+json", statement)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer.Annotations = map[string]string{"in-toto.io/predicate-type": predicateType}
	unknown := ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	config, err := l.json(ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: unknown,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := l.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc.Platform = &unknown
	desc.Annotations = map[string]string{
		AnnotationReferenceDigest: subject.Digest.String(),
		AnnotationReferenceType:   AttestationManifest,
	}
	return desc, nil
}
