package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archiveVersion changes whenever the archive formats below change.
const archiveVersion = "archive-1"

// Format is the kind of tarball Archive writes.
type Format string

const (
	// DockerArchive is what `docker save` of docker 25 and later writes,
	// and `docker load` reads: an OCI layout whose layers are
	// uncompressed tars (blobs named by their diff IDs) and whose
	// index.json entry carries io.containerd.image.name and the OCI tag,
	// plus the legacy manifest.json (Config, RepoTags, Layers as paths
	// into blobs/) and repositories files. Of an index, the image for this
	// machine's platform is saved, as docker without the containerd store
	// does.
	DockerArchive Format = "docker-archive"
	// OCIArchive is the layout as it is, in a tar: skopeo's and podman's
	// oci-archive.
	OCIArchive Format = "oci-archive"
)

// archiveTime is the mtime of every entry of an archive.
var archiveTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var archiveMu sync.Mutex

// Archive returns a tarball of the image in layout (one of this package's
// layouts, or any layout whose index.json names one image or index) in
// format, for load and import tests. Archives are cached by the layout's
// index.json, which names its content by digest. Cached and shared: do
// not modify.
func Archive(t testing.TB, layout string, format Format) string {
	t.Helper()
	archiveMu.Lock()
	defer archiveMu.Unlock()
	path, err := buildArchive(layout, format)
	if err != nil {
		t.Fatalf("%s of %s: %v", format, layout, err)
	}
	return path
}

func buildArchive(layout string, format Format) (string, error) {
	if format != DockerArchive && format != OCIArchive {
		return "", fmt.Errorf("unknown archive format %q", format)
	}
	index, err := readFileMax(filepath.Join(layout, ocispec.ImageIndexFile), maxJSONBlob)
	if err != nil {
		return "", err
	}
	key := cacheKey(archiveVersion, string(format), runtime.GOARCH, digest.FromBytes(index).String())
	dir, err := cached("archive", key, func(dir string) error {
		src := layout
		if format == DockerArchive {
			src = filepath.Join(dir, "docker")
			if err := writeDockerLayout(layout, src); err != nil {
				return err
			}
			defer os.RemoveAll(src)
		}
		return tarDir(src, filepath.Join(dir, "image.tar"))
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "image.tar"), nil
}

// dockerManifestEntry is one image of docker's legacy manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// writeDockerLayout writes into the new directory dst what `docker save`
// writes for the image in layout.
func writeDockerLayout(layout, dst string) error {
	top, err := topManifest(layout)
	if err != nil {
		return err
	}
	desc, err := selectImage(layout, top)
	if err != nil {
		return err
	}
	var manifest ocispec.Manifest
	if err := readJSONBlob(layout, desc, &manifest); err != nil {
		return err
	}
	configBytes, err := readBlob(layout, manifest.Config)
	if err != nil {
		return err
	}
	var config ocispec.Image
	if err := json.Unmarshal(configBytes, &config); err != nil {
		return fmt.Errorf("parse config %s: %w", manifest.Config.Digest, err)
	}
	if len(config.RootFS.DiffIDs) != len(manifest.Layers) {
		return fmt.Errorf("image %s: %d layers, %d diff IDs", desc.Digest, len(manifest.Layers), len(config.RootFS.DiffIDs))
	}

	l, err := newLayout(dst)
	if err != nil {
		return err
	}
	// The config keeps its bytes, so the image ID survives the save.
	configDesc, err := l.blob(ocispec.MediaTypeImageConfig, configBytes)
	if err != nil {
		return err
	}
	entry := dockerManifestEntry{Config: "blobs/sha256/" + configDesc.Digest.Encoded()}
	var layers []ocispec.Descriptor
	for i, ld := range manifest.Layers {
		size, err := writeUncompressed(l, layout, ld, config.RootFS.DiffIDs[i])
		if err != nil {
			return err
		}
		d := config.RootFS.DiffIDs[i]
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: size})
		entry.Layers = append(entry.Layers, "blobs/sha256/"+d.Encoded())
	}
	mdesc, err := l.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	})
	if err != nil {
		return err
	}

	if name := top.Annotations[annotationCtrName]; name != "" {
		ref, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return fmt.Errorf("image name %q: %w", name, err)
		}
		tagged, ok := ref.(reference.NamedTagged)
		if !ok {
			return fmt.Errorf("image name %q has no tag", name)
		}
		mdesc.Annotations = map[string]string{annotationCtrName: name, annotationRefName: tagged.Tag()}
		entry.RepoTags = []string{reference.FamiliarString(ref)}
		// Docker writes a legacy v1 layer ID here that no loader reads;
		// the top layer's diff ID stands in for it.
		repos := map[string]map[string]string{
			reference.FamiliarName(ref): {tagged.Tag(): config.RootFS.DiffIDs[len(config.RootFS.DiffIDs)-1].Encoded()},
		}
		if err := writeJSONFile(filepath.Join(dst, "repositories"), repos); err != nil {
			return err
		}
	}
	if err := writeJSONFile(filepath.Join(dst, "manifest.json"), []dockerManifestEntry{entry}); err != nil {
		return err
	}
	return l.finish(mdesc)
}

// selectImage returns the image manifest top names: top itself, or of an
// index the image for this machine, skipping attestations.
func selectImage(layout string, top ocispec.Descriptor) (ocispec.Descriptor, error) {
	switch top.MediaType {
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		return top, nil
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
	default:
		return ocispec.Descriptor{}, fmt.Errorf("%s: media type %q is neither an image nor an index", top.Digest, top.MediaType)
	}
	var index ocispec.Index
	if err := readJSONBlob(layout, top, &index); err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, d := range index.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH &&
			d.Annotations[AnnotationReferenceType] != AttestationManifest {
			return d, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("index %s has no image for linux/%s", top.Digest, runtime.GOARCH)
}

// writeUncompressed stores the layer ld of layout uncompressed in l,
// checking the compressed bytes against ld and the tar against diffID,
// and returns the tar's size.
func writeUncompressed(l *layoutWriter, layout string, ld ocispec.Descriptor, diffID digest.Digest) (int64, error) {
	f, err := os.Open(blobPath(layout, ld.Digest))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	compressed := &countingHash{Hash: sha256.New()}
	in := io.TeeReader(io.LimitReader(f, ld.Size+1), compressed)
	var r io.Reader
	switch ld.MediaType {
	case ocispec.MediaTypeImageLayerGzip, MediaTypeDockerLayer:
		gz, err := gzip.NewReader(in)
		if err != nil {
			return 0, fmt.Errorf("layer %s: %w", ld.Digest, err)
		}
		defer gz.Close()
		r = gz
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(in)
		if err != nil {
			return 0, fmt.Errorf("layer %s: %w", ld.Digest, err)
		}
		defer zr.Close()
		r = zr
	case ocispec.MediaTypeImageLayer, "application/vnd.docker.image.rootfs.diff.tar":
		r = in
	default:
		return 0, fmt.Errorf("layer %s: unsupported media type %q", ld.Digest, ld.MediaType)
	}
	out, err := os.CreateTemp(l.blobs, ".layer-")
	if err != nil {
		return 0, err
	}
	defer func() {
		out.Close()
		os.Remove(out.Name())
	}()
	raw := &countingHash{Hash: sha256.New()}
	if _, err := io.Copy(io.MultiWriter(out, raw), r); err != nil {
		return 0, fmt.Errorf("decompress layer %s: %w", ld.Digest, err)
	}
	// Read what a decompressor may leave unread, so the digest covers
	// the whole blob.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return 0, fmt.Errorf("read layer %s: %w", ld.Digest, err)
	}
	if got := digest.NewDigest(digest.SHA256, compressed.Hash); got != ld.Digest || compressed.n != ld.Size {
		return 0, fmt.Errorf("layer %s: blob is %s, %d bytes (descriptor: %d)", ld.Digest, got, compressed.n, ld.Size)
	}
	if got := digest.NewDigest(digest.SHA256, raw.Hash); got != diffID {
		return 0, fmt.Errorf("layer %s: uncompressed digest %s, config says %s", ld.Digest, got, diffID)
	}
	if err := out.Chmod(0o644); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(out.Name(), filepath.Join(l.blobs, diffID.Encoded())); err != nil {
		return 0, fmt.Errorf("store layer %s: %w", diffID, err)
	}
	return raw.n, nil
}

// tarDir writes the directories and regular files under src to a new
// tar file at path in lexical order, owned by root with fixed modes and
// times, as docker's and skopeo's archives are.
func tarDir(src, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: archiveTime, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		case d.Type().IsRegular():
		default:
			return fmt.Errorf("archive %s: not a directory or regular file", p)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if n, err := io.Copy(tw, in); err != nil {
			return err
		} else if n != hdr.Size {
			return errors.New("archive " + p + ": size changed while reading")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", src, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", src, err)
	}
	return f.Close()
}
