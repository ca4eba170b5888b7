package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Caps on what the store reads into memory from a blob. A registry or an
// archive is hostile: a manifest or config that claims gigabytes is
// refused before a byte is read (CVE-2024-3727).
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 16 << 20
)

// Service is the image store. Its methods are safe for concurrent use.
type Service struct {
	cfg      Config
	content  *content.Store
	snaps    snapshot.Snapshotter
	registry *registry.Client
	meta     *metadata

	// mu serialises changes to names and records with the GC's mark
	// phase; downloads and unpacks run outside it.
	mu sync.Mutex
	// gc is held for reading by everything that writes blobs or snapshots
	// before recording the image that reaches them (pull, load, import),
	// and for writing by the collector, which would otherwise see those
	// as garbage.
	gc sync.RWMutex
	// unpacking single-flights layer extractions by chain ID, so two pulls
	// sharing a layer write it once.
	unpacking flight
	// configs caches parsed configs by digest; they are immutable.
	configs sync.Map // digest.Digest -> *dockerspec.DockerOCIImage
}

var _ Backend = (*Service)(nil)

// New opens (creating if needed) the image store under cfg.Root.
func New(cfg Config) (*Service, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("image store: no root directory")
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	cs, err := content.Open(filepath.Join(cfg.Root, "content"))
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.New(filepath.Join(cfg.Root, "snapshots"), cfg.Snapshotter)
	if err != nil {
		return nil, err
	}
	reg, err := registry.New(registry.Config{Mirrors: cfg.Mirrors, Insecure: cfg.Insecure, UserAgent: "berth"})
	if err != nil {
		snaps.Close()
		return nil, err
	}
	meta, err := openMetadata(filepath.Join(cfg.Root, "metadata.db"))
	if err != nil {
		snaps.Close()
		return nil, err
	}
	return &Service{cfg: cfg, content: cs, snaps: snaps, registry: reg, meta: meta}, nil
}

// Close releases the metadata database and the snapshotter.
func (s *Service) Close() error {
	return errors.Join(s.meta.close(), s.snaps.Close())
}

// Snapshotter is the store's snapshotter, for the engine's container
// snapshots (their parents are image chain IDs).
func (s *Service) Snapshotter() snapshot.Snapshotter { return s.snaps }

// Driver names the snapshotter for docker info and inspect.
func (s *Service) Driver() string {
	if s.snaps.Caps().OverlayWhiteouts {
		return "overlayfs"
	}
	return "copy"
}

// hostPlatform is the platform images are pulled for by default.
func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses docker's --platform value: os[/arch[/variant]].
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 1 || len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("%w: invalid platform %q: want os[/arch[/variant]]", ErrInvalid, s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
	if len(parts) > 1 {
		p.Architecture = normaliseArch(parts[1])
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	for _, f := range parts {
		if f == "" {
			return ocispec.Platform{}, fmt.Errorf("%w: invalid platform %q: empty component", ErrInvalid, s)
		}
	}
	if p.OS != "linux" {
		return ocispec.Platform{}, fmt.Errorf("%w: operating system %q is not supported: berth runs linux images", ErrInvalid, p.OS)
	}
	if p.Architecture == "arm64" && p.Variant == "" {
		p.Variant = "v8"
	}
	return p, nil
}

func normaliseArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armhf":
		return "arm"
	}
	return a
}

// readConfig returns the parsed config with digest d from the content
// store.
func (s *Service) readConfig(desc ocispec.Descriptor) (*dockerspec.DockerOCIImage, error) {
	if c, ok := s.configs.Load(desc.Digest); ok {
		return c.(*dockerspec.DockerOCIImage), nil
	}
	data, err := s.content.ReadBlob(desc, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	s.configs.Store(desc.Digest, cfg)
	return cfg, nil
}

func parseConfig(data []byte) (*dockerspec.DockerOCIImage, error) {
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	if cfg.RootFS.Type != "layers" {
		return nil, fmt.Errorf("rootfs type %q is not \"layers\"", cfg.RootFS.Type)
	}
	for i, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("rootfs.diff_ids[%d]: %w", i, err)
		}
	}
	return &cfg, nil
}

// readManifest reads and parses the manifest desc points at.
func (s *Service) readManifest(desc ocispec.Descriptor) (*ocispec.Manifest, error) {
	data, err := s.content.ReadBlob(desc, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return parseManifest(data)
}

// parseManifest parses an OCI or Docker schema2 image manifest and checks
// what the store relies on.
func parseManifest(data []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest: schemaVersion %d is not supported", m.SchemaVersion)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: config digest: %w", err)
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("manifest: layers[%d]: %w", i, err)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("manifest: layers[%d]: negative size", i)
		}
		if !isLayerType(l.MediaType) {
			return nil, fmt.Errorf("manifest: layers[%d]: media type %q is not a layer", i, l.MediaType)
		}
	}
	return &m, nil
}

func isLayerType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still in the wild
		ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		mediaTypeDockerLayer, mediaTypeDockerForeignLayer, mediaTypeDockerUncompressedLayer:
		return true
	}
	return false
}

// Docker's media types the store handles beside OCI's.
const (
	mediaTypeDockerManifest          = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig            = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer             = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeignLayer      = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerUncompressedLayer = "application/vnd.docker.image.rootfs.diff.tar"
)

// chainIDs computes the chain ID of each layer from the diff IDs: the
// first is its diff ID, each next one digest(parent + " " + diffID).
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// image assembles the Image for id from the metadata and the blobs.
func (s *Service) image(b buckets, id digest.Digest) (*Image, error) {
	var rec record
	ok, err := getJSON(b.images, id.String(), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, noSuchImage(id.String())
	}
	m, err := s.readManifest(rec.Target)
	if err != nil {
		return nil, err
	}
	cfg, err := s.readConfig(m.Config)
	if err != nil {
		return nil, err
	}
	img := &Image{ID: id, Target: rec.Target, Config: *cfg, Pulled: rec.Pulled}
	if cfg.Created != nil {
		img.Created = *cfg.Created
	}
	for _, n := range namesOf(b, id) {
		if strings.Contains(n, "@") {
			img.RepoDigests = append(img.RepoDigests, n)
		} else {
			img.Names = append(img.Names, n)
		}
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	for i, l := range m.Layers {
		if i >= len(chains) {
			break
		}
		var lr layerRecord
		if _, err := getJSON(b.layers, chains[i].String(), &lr); err != nil {
			return nil, err
		}
		img.Layers = append(img.Layers, Layer{Blob: l, DiffID: cfg.RootFS.DiffIDs[i], ChainID: chains[i], Size: lr.Size})
		img.Size += lr.Size
	}
	return img, nil
}

// flight runs one function per key at a time; later callers for a key in
// flight wait for it and get its error.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	err  error
}

func (f *flight) do(ctx context.Context, key string, fn func() error) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.err = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.err
}
