package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// An image archive is what docker save writes since docker 25: an OCI
// image layout (oci-layout, index.json, blobs/sha256/...) that also carries
// the older docker-archive index, manifest.json, so both docker load and
// OCI tools read it. Blobs are written as they are stored, so a save, rmi
// and load keeps every digest.

// archiveManifest is one entry of docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

const (
	annotationImageName = "io.containerd.image.name" // a full reference, as docker and containerd write it
	maxArchiveJSON      = 4 << 20
)

// Save writes the images refs name as one archive. An image named by ID
// is saved without names.
func (s *Service) Save(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return invalidf("no images to save")
	}
	type saved struct {
		img   *Image
		names []string // familiar names asked for, in order
	}
	var images []*saved
	byID := map[digest.Digest]*saved{}
	for _, r := range refs {
		img, err := s.Get(ctx, r)
		if err != nil {
			return err
		}
		sv := byID[img.ID]
		if sv == nil {
			sv = &saved{img: img}
			byID[img.ID] = sv
			images = append(images, sv)
		}
		if !strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(r, "sha256:")) {
			ref, err := registry.ParseReference(r)
			if err == nil && ref.Digest() == "" {
				sv.names = append(sv.names, ref.String())
			}
		}
	}

	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	writeFile := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	writeBlob := func(desc ocispec.Descriptor) error {
		if written[desc.Digest] {
			return nil
		}
		written[desc.Digest] = true
		f, err := s.content.Open(desc.Digest)
		if err != nil {
			return fmt.Errorf("save: blob %s: %w", desc.Digest, err)
		}
		defer f.Close()
		hdr := &tar.Header{Name: blobPath(desc.Digest), Mode: 0o644, Size: desc.Size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, f, desc.Size); err != nil {
			return fmt.Errorf("save: blob %s: %w", desc.Digest, err)
		}
		return ctx.Err()
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0), Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	var manifests []archiveManifest
	repositories := map[string]map[string]string{}
	for _, sv := range images {
		m, err := s.readManifest(sv.img.Target)
		if err != nil {
			return err
		}
		for _, l := range m.Layers {
			if err := writeBlob(l); err != nil {
				return err
			}
		}
		if err := writeBlob(m.Config); err != nil {
			return err
		}
		if err := writeBlob(sv.img.Target); err != nil {
			return err
		}
		am := archiveManifest{Config: blobPath(m.Config.Digest)}
		for _, l := range m.Layers {
			am.Layers = append(am.Layers, blobPath(l.Digest))
		}
		if len(sv.names) == 0 {
			index.Manifests = append(index.Manifests, sv.img.Target)
		}
		for _, n := range sv.names {
			ref, _ := registry.ParseReference(n)
			d := sv.img.Target
			d.Annotations = map[string]string{annotationImageName: ref.String(), ocispec.AnnotationRefName: ref.Tag()}
			index.Manifests = append(index.Manifests, d)
			am.RepoTags = append(am.RepoTags, ref.Familiar())
			repo := strings.TrimSuffix(ref.Familiar(), ":"+ref.Tag())
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][ref.Tag()] = sv.img.ID.Encoded()
		}
		manifests = append(manifests, am)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{"index.json", index},
		{"manifest.json", manifests},
		{"repositories", repositories},
	} {
		data, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(f.name, data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// Load reads an archive written by Save, by docker save (old and new) or an
// OCI image layout tar, stores its images and names them as the archive
// does. It returns docker's "Loaded image" lines.
func (s *Service) Load(ctx context.Context, r io.Reader, progress ProgressFunc) ([]string, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()

	files := map[string]ocispec.Descriptor{} // archive path -> stored blob
	links := map[string]string{}             // archive path -> path it links to
	small := map[string][]byte{}             // the archive's JSON files
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, invalidf("load: reading the archive: %v", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return nil, invalidf("load: archive entry %q is outside the archive", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = path.Clean(target)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if hdr.Size <= maxArchiveJSON && isSmallEntry(name) {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, invalidf("load: %s: %v", name, err)
			}
			small[name] = data
			if isIndexFile(name) {
				continue
			}
			desc, err := s.putEntry(ctx, name, int64(len(data)), bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			files[name] = desc
			continue
		}
		if isIndexFile(name) {
			return nil, invalidf("load: %s is %d bytes, over the %d-byte limit", name, hdr.Size, maxArchiveJSON)
		}
		desc, err := s.putEntry(ctx, name, hdr.Size, tr)
		if err != nil {
			return nil, err
		}
		files[name] = desc
	}
	resolve := func(p string) (ocispec.Descriptor, bool) {
		for range 8 {
			if d, ok := files[p]; ok {
				return d, true
			}
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return ocispec.Descriptor{}, false
	}

	loads, err := s.archiveImages(small, resolve)
	if err != nil {
		return nil, err
	}
	var loaded []string
	for _, l := range loads {
		if err := s.loadImage(ctx, l, progress); err != nil {
			return loaded, err
		}
		if len(l.names) == 0 {
			line := "Loaded image ID: " + l.config.Digest.String()
			loaded = append(loaded, line)
			progress(Progress{Status: line})
		}
		for _, n := range l.names {
			line := "Loaded image: " + familiar(n)
			loaded = append(loaded, line)
			progress(Progress{Status: line})
		}
	}
	return loaded, nil
}

// isSmallEntry tells what may be read into memory: the archive's index
// files, blobs (manifests and configs are among them; small layers too,
// which costs nothing), and old docker-archive JSON. A layer can be many
// gigabytes, so nothing over maxArchiveJSON is.
func isSmallEntry(name string) bool {
	_, blob := blobDigest(name)
	return blob || isIndexFile(name) || strings.HasSuffix(name, ".json") || strings.HasSuffix(name, "/json")
}

func isIndexFile(name string) bool {
	switch name {
	case "index.json", "manifest.json", "repositories", ocispec.ImageLayoutFile:
		return true
	}
	return false
}

func blobDigest(name string) (digest.Digest, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	return d, d.Validate() == nil
}

// putEntry stores one large archive entry: a blob under blobs/ is checked
// against its name; anything else (an old docker-archive's layer.tar) is
// stored under the digest of its bytes.
func (s *Service) putEntry(ctx context.Context, name string, size int64, r io.Reader) (ocispec.Descriptor, error) {
	if d, ok := blobDigest(name); ok {
		desc := ocispec.Descriptor{Digest: d, Size: size}
		if err := s.content.Put(ctx, desc, r); err != nil {
			return desc, invalidf("load: %s: %v", name, err)
		}
		return desc, nil
	}
	desc, err := s.putUnknown(ctx, r)
	if err != nil {
		return desc, fmt.Errorf("load: %s: %w", name, err)
	}
	return desc, nil
}

// putUnknown stores bytes whose digest is not known beforehand, spooling
// them through a temporary file.
func (s *Service) putUnknown(ctx context.Context, r io.Reader) (ocispec.Descriptor, error) {
	tmp, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(tmp, h.Hash()), r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{Digest: h.Digest(), Size: n}
	return desc, s.content.Put(ctx, desc, tmp)
}

func (s *Service) tmpDir() string {
	dir := path.Join(s.cfg.Root, "tmp")
	_ = os.MkdirAll(dir, 0o700)
	return dir
}

// imageLoad is one image found in an archive.
type imageLoad struct {
	manifest ocispec.Descriptor // stored manifest
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	names    []string // normalised
}

// archiveImages finds the images an archive holds: through manifest.json
// where there is one (docker's names, and its old layouts), else through
// index.json. A manifest.json image keeps the manifest index.json has for
// the same config, so its digests survive a round trip.
func (s *Service) archiveImages(small map[string][]byte, resolve func(string) (ocispec.Descriptor, bool)) ([]imageLoad, error) {
	var index ocispec.Index
	indexed := map[digest.Digest]ocispec.Descriptor{} // config digest -> manifest
	var indexLoads []imageLoad
	if data, ok := small["index.json"]; ok {
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, invalidf("load: index.json: %v", err)
		}
		for _, d := range index.Manifests {
			l, err := s.indexedImage(d, small, resolve, 0)
			if err != nil {
				return nil, err
			}
			for _, im := range l {
				indexed[im.config.Digest] = im.manifest
			}
			indexLoads = append(indexLoads, l...)
		}
	}
	data, ok := small["manifest.json"]
	if !ok {
		if len(indexLoads) == 0 {
			return nil, invalidf("load: the archive has neither manifest.json nor index.json with images")
		}
		return mergeLoads(indexLoads), nil
	}
	var entries []archiveManifest
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, invalidf("load: manifest.json: %v", err)
	}
	var loads []imageLoad
	for i, e := range entries {
		cfg, ok := resolve(path.Clean(e.Config))
		if !ok {
			return nil, invalidf("load: manifest.json[%d]: config %q is not in the archive", i, e.Config)
		}
		cfg.MediaType = ocispec.MediaTypeImageConfig
		l := imageLoad{config: cfg}
		for _, p := range e.Layers {
			d, ok := resolve(path.Clean(p))
			if !ok {
				return nil, invalidf("load: manifest.json[%d]: layer %q is not in the archive", i, p)
			}
			mt, err := s.layerMediaType(d.Digest)
			if err != nil {
				return nil, err
			}
			d.MediaType = mt
			l.layers = append(l.layers, d)
		}
		for _, t := range e.RepoTags {
			ref, err := registry.ParseReference(t)
			if err != nil {
				return nil, invalidf("load: manifest.json[%d]: %v", i, err)
			}
			l.names = append(l.names, nameKey(ref))
		}
		if m, ok := indexed[cfg.Digest]; ok {
			l.manifest = m
		} else {
			m, err := s.synthesiseManifest(l.config, l.layers)
			if err != nil {
				return nil, err
			}
			l.manifest = m
		}
		loads = append(loads, l)
	}
	return loads, nil
}

// indexedImage follows one index.json entry to its image(s); nested
// indexes (a saved multi-platform image) are followed to the host's
// platform.
func (s *Service) indexedImage(d ocispec.Descriptor, small map[string][]byte, resolve func(string) (ocispec.Descriptor, bool), depth int) ([]imageLoad, error) {
	if depth > 2 {
		return nil, invalidf("load: indexes nested too deeply")
	}
	data, ok := small[blobPath(d.Digest)]
	if !ok {
		return nil, nil // a manifest the archive doesn't carry (another platform)
	}
	if digest.FromBytes(data) != d.Digest {
		return nil, invalidf("load: %s does not match its digest", blobPath(d.Digest))
	}
	var names []string
	if n := d.Annotations[annotationImageName]; n != "" {
		if ref, err := registry.ParseReference(n); err == nil {
			names = append(names, nameKey(ref))
		}
	}
	var probe struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, invalidf("load: %s: %v", blobPath(d.Digest), err)
	}
	if probe.Config == nil {
		want := hostPlatform()
		for _, child := range probe.Manifests {
			if child.Platform != nil && child.Platform.OS == want.OS && child.Platform.Architecture == want.Architecture {
				l, err := s.indexedImage(child, small, resolve, depth+1)
				for i := range l {
					l[i].names = append(l[i].names, names...)
				}
				return l, err
			}
		}
		return nil, nil
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, invalidf("load: %s: %v", blobPath(d.Digest), err)
	}
	if d.MediaType == "" {
		d.MediaType = probe.MediaType
	}
	d.Annotations, d.Platform = nil, nil
	return []imageLoad{{manifest: d, config: m.Config, layers: m.Layers, names: names}}, nil
}

func mergeLoads(loads []imageLoad) []imageLoad {
	var out []imageLoad
	seen := map[digest.Digest]int{}
	for _, l := range loads {
		if i, ok := seen[l.manifest.Digest]; ok {
			out[i].names = append(out[i].names, l.names...)
			continue
		}
		seen[l.manifest.Digest] = len(out)
		out = append(out, l)
	}
	return out
}

// layerMediaType tells a stored layer's compression from its first bytes.
func (s *Service) layerMediaType(d digest.Digest) (string, error) {
	f, err := s.content.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return ocispec.MediaTypeImageLayerGzip, nil
	case n == 4 && bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

// synthesiseManifest writes an OCI manifest for a config and layers that
// came without one (an old docker-archive).
func (s *Service) synthesiseManifest(config ocispec.Descriptor, layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	m := ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    layers,
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return desc, s.content.Put(context.Background(), desc, bytes.NewReader(data))
}

// loadImage unpacks a loaded image's layers from the content store and
// records it.
func (s *Service) loadImage(ctx context.Context, l imageLoad, progress ProgressFunc) error {
	cfg, err := s.readConfig(l.config)
	if err != nil {
		return classify(ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(l.layers) {
		return invalidf("load: image %s has %d layers but its config %d diff IDs", l.config.Digest, len(l.layers), len(cfg.RootFS.DiffIDs))
	}
	sources := make([]layerSource, len(l.layers))
	for i, d := range l.layers {
		sources[i] = layerSource{desc: d, diffID: cfg.RootFS.DiffIDs[i]}
	}
	layerProgress := func(p Progress) {
		// docker load reports "Loading layer"; the pull vocabulary maps on.
		if p.Status == "Downloading" {
			p.Status = "Loading layer"
			progress(p)
		}
	}
	if err := s.unpack(ctx, sources, layerProgress); err != nil {
		return err
	}
	sort.Strings(l.names)
	_, err = s.record(l.config.Digest, l.manifest, nil, l.names)
	return err
}
