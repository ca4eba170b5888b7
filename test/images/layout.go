package images

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations the layouts' index.json entries carry: the OCI tag, and the
// full name containerd's "ctr images import" gives the image.
const (
	annotationRefName = ocispec.AnnotationRefName
	annotationCtrName = "io.containerd.image.name"
)

// compression is how a layer blob is compressed.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstded
)

// layoutWriter writes an OCI image layout into a new directory.
type layoutWriter struct {
	dir, blobs string
}

func newLayout(dir string) (*layoutWriter, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("create image layout: %w", err)
	}
	return &layoutWriter{dir: dir, blobs: blobs}, nil
}

// blob stores b and returns its descriptor.
func (l *layoutWriter) blob(mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(l.blobs, d.Encoded()), b, 0o644); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("write blob %s: %w", d, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// json stores v, encoded as JSON, as a blob.
func (l *layoutWriter) json(mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	return l.blob(mediaType, b)
}

// copyBlob copies the blob d of the layout src into this one.
func (l *layoutWriter) copyBlob(src string, d ocispec.Descriptor) error {
	b, err := readBlob(src, d)
	if err != nil {
		return err
	}
	_, err = l.blob(d.MediaType, b)
	return err
}

// countingHash hashes and counts what is written through it.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

// layer stores the tar stream that write produces, compressed by comp, as
// a blob; it returns the layer's descriptor and its diff ID (the digest of
// the uncompressed tar). The compressors' output depends only on their
// input: stdlib gzip writes no name or time into its header, and zstd runs
// with one fixed encoder configuration.
func (l *layoutWriter) layer(mediaType string, comp compression, write func(*tar.Writer) error) (ocispec.Descriptor, digest.Digest, error) {
	f, err := os.CreateTemp(l.blobs, ".layer-")
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("create layer: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	compressed := &countingHash{Hash: sha256.New()}
	raw := sha256.New()
	out := io.MultiWriter(f, compressed)
	var cw io.WriteCloser
	switch comp {
	case gzipped:
		cw = gzip.NewWriter(out)
	case zstded:
		if cw, err = zstd.NewWriter(out, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault)); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("zstd writer: %w", err)
		}
	default:
		cw = nopCloser{out}
	}
	tw := tar.NewWriter(io.MultiWriter(cw, raw))
	if err := write(tw); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	if err := cw.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("compress layer: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("chmod layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("write layer: %w", err)
	}
	d := digest.NewDigest(digest.SHA256, compressed.Hash)
	if err := os.Rename(f.Name(), filepath.Join(l.blobs, d.Encoded())); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store layer: %w", err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: compressed.n}, digest.NewDigest(digest.SHA256, raw), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// finish writes index.json, naming the one top-level manifest or index,
// and oci-layout.
func (l *layoutWriter) finish(top ocispec.Descriptor) error {
	index := ocispec.Index{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{top},
	}
	if err := writeJSONFile(filepath.Join(l.dir, ocispec.ImageIndexFile), index); err != nil {
		return err
	}
	return writeJSONFile(filepath.Join(l.dir, ocispec.ImageLayoutFile), ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write image layout: %w", err)
	}
	return nil
}

// maxJSONBlob bounds the index, manifests and configs read back from a
// layout: ours are a few KiB; a layout handed to Archive or Push by a test
// could be anything.
const maxJSONBlob = 4 << 20

// readIndex reads and parses a layout's index.json.
func readIndex(layout string) (ocispec.Index, error) {
	var index ocispec.Index
	b, err := readFileMax(filepath.Join(layout, ocispec.ImageIndexFile), maxJSONBlob)
	if err != nil {
		return index, err
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return index, fmt.Errorf("parse %s/index.json: %w", layout, err)
	}
	if index.SchemaVersion != 2 {
		return index, fmt.Errorf("%s/index.json: schemaVersion %d, want 2", layout, index.SchemaVersion)
	}
	return index, nil
}

// topManifest returns the one descriptor of a layout's index.json: the
// layouts this package writes and reads name a single image or index.
func topManifest(layout string) (ocispec.Descriptor, error) {
	index, err := readIndex(layout)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if len(index.Manifests) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("%s/index.json: %d manifests, want 1", layout, len(index.Manifests))
	}
	return index.Manifests[0], nil
}

// readBlob reads the blob d of a layout and checks it against d.
func readBlob(layout string, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d", d.Digest, d.Size)
	}
	b, err := readFileMax(blobPath(layout, d.Digest), d.Size)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, len(b), d.Size)
	}
	if got := d.Digest.Algorithm().FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: content digest is %s", d.Digest, got)
	}
	return b, nil
}

// readJSONBlob reads a blob of at most maxJSONBlob bytes into v.
func readJSONBlob(layout string, d ocispec.Descriptor, v any) error {
	if d.Size > maxJSONBlob {
		return fmt.Errorf("blob %s (%s): %d bytes, more than the %d allowed", d.Digest, d.MediaType, d.Size, maxJSONBlob)
	}
	b, err := readBlob(layout, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s (%s): %w", d.Digest, d.MediaType, err)
	}
	return nil
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", string(d.Algorithm()), d.Encoded())
}

// readFileMax reads a file of at most max bytes; one byte more is an
// error rather than a truncation.
func readFileMax(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, max)
	}
	return b, nil
}
