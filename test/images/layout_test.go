package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkedImage is one image of a layout, read and checked by checkLayout.
type checkedImage struct {
	desc     ocispec.Descriptor
	manifest ocispec.Manifest
	config   dockerspec.DockerOCIImage
}

// checkedLayout is what checkLayout found.
type checkedLayout struct {
	top    ocispec.Descriptor
	index  *ocispec.Index // when top is an index
	images []checkedImage // in index order
}

// checkLayout checks a layout the way a strict consumer would: oci-layout
// and index.json parse; every blob reached from index.json has its
// descriptor's digest and size; manifests and configs parse with the
// image-spec types; every layer decompresses (by its media type) to the
// diff ID the config gives it; the history has one non-empty entry per
// layer; and no blob lies there unreferenced.
func checkLayout(t *testing.T, dir string) checkedLayout {
	t.Helper()
	return checkLayoutLayers(t, dir, true)
}

// checkLayoutLayers is checkLayout that, unless decompress is set, checks
// only the layers' compressed digests: a caller that reads a big layer
// anyway checks its diff ID in the same pass.
func checkLayoutLayers(t *testing.T, dir string, decompress bool) checkedLayout {
	t.Helper()
	var ol ocispec.ImageLayout
	if b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &ol); err != nil || ol.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("oci-layout: %s %v", b, err)
	}
	var index ocispec.Index
	if b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile)); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if index.SchemaVersion != 2 || index.MediaType != ocispec.MediaTypeImageIndex || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %+v", index)
	}
	used := map[digest.Digest]bool{}
	blob := func(d ocispec.Descriptor) []byte {
		t.Helper()
		b, err := os.ReadFile(blobPath(dir, d.Digest))
		if err != nil {
			t.Fatalf("blob of %+v: %v", d, err)
		}
		if digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: digest %s, %d bytes; descriptor says %d", d.Digest, digest.FromBytes(b), len(b), d.Size)
		}
		used[d.Digest] = true
		return b
	}
	image := func(d ocispec.Descriptor) checkedImage {
		t.Helper()
		img := checkedImage{desc: d}
		if err := json.Unmarshal(blob(d), &img.manifest); err != nil {
			t.Fatalf("manifest %s: %v", d.Digest, err)
		}
		m := img.manifest
		if m.SchemaVersion != 2 || m.MediaType != d.MediaType {
			t.Fatalf("manifest %s: schemaVersion %d, mediaType %q; descriptor says %q", d.Digest, m.SchemaVersion, m.MediaType, d.MediaType)
		}
		if err := json.Unmarshal(blob(m.Config), &img.config); err != nil {
			t.Fatalf("config %s: %v", m.Config.Digest, err)
		}
		if d.Annotations[AnnotationReferenceType] == AttestationManifest {
			for _, l := range m.Layers {
				blob(l)
			}
			return img
		}
		if len(img.config.RootFS.DiffIDs) != len(m.Layers) || img.config.RootFS.Type != "layers" {
			t.Fatalf("image %s: %d layers, rootfs %+v", d.Digest, len(m.Layers), img.config.RootFS)
		}
		nonEmpty := 0
		for _, h := range img.config.History {
			if !h.EmptyLayer {
				nonEmpty++
			}
		}
		if nonEmpty != len(m.Layers) {
			t.Errorf("image %s: %d history entries with layers, %d layers", d.Digest, nonEmpty, len(m.Layers))
		}
		for i, l := range m.Layers {
			if !decompress {
				blobDigest(t, dir, l)
				used[l.Digest] = true
				continue
			}
			if got := diffID(t, dir, l); got != img.config.RootFS.DiffIDs[i] {
				t.Errorf("layer %d (%s): uncompressed %s, diff_ids say %s", i, l.Digest, got, img.config.RootFS.DiffIDs[i])
			}
			used[l.Digest] = true
		}
		if d.Platform != nil && (d.Platform.OS != img.config.OS || d.Platform.Architecture != img.config.Architecture || d.Platform.Variant != img.config.Variant) {
			t.Errorf("image %s: index platform %+v, config says %s/%s/%s", d.Digest, d.Platform, img.config.OS, img.config.Architecture, img.config.Variant)
		}
		return img
	}

	out := checkedLayout{top: index.Manifests[0]}
	switch out.top.MediaType {
	case ocispec.MediaTypeImageIndex:
		out.index = new(ocispec.Index)
		if err := json.Unmarshal(blob(out.top), out.index); err != nil {
			t.Fatal(err)
		}
		for _, d := range out.index.Manifests {
			out.images = append(out.images, image(d))
		}
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		out.images = append(out.images, image(out.top))
	default:
		t.Fatalf("index.json names a %q", out.top.MediaType)
	}

	names, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !used[digest.NewDigestFromEncoded(digest.SHA256, filepath.Base(n))] {
			t.Errorf("blob %s is not referenced", filepath.Base(n))
		}
	}
	return out
}

// openLayer returns the uncompressed tar of a layer of a layout, which it
// checks against the descriptor's digest and size as it is read to EOF.
func openLayer(t *testing.T, dir string, d ocispec.Descriptor) io.ReadCloser {
	t.Helper()
	f, err := os.Open(blobPath(dir, d.Digest))
	if err != nil {
		t.Fatal(err)
	}
	vr := &verifyingReader{r: f, h: sha256.New(), want: d}
	switch d.MediaType {
	case ocispec.MediaTypeImageLayerGzip, MediaTypeDockerLayer:
		gz, err := gzip.NewReader(vr)
		if err != nil {
			t.Fatalf("layer %s: %v", d.Digest, err)
		}
		return readCloser{gz, vr, f}
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(vr)
		if err != nil {
			t.Fatalf("layer %s: %v", d.Digest, err)
		}
		return readCloser{zr.IOReadCloser(), vr, f}
	case ocispec.MediaTypeImageLayer:
		return readCloser{io.NopCloser(vr), vr, f}
	}
	t.Fatalf("layer %s: media type %q", d.Digest, d.MediaType)
	return nil
}

// verifyingReader fails the read that reaches EOF when the bytes read do
// not match the descriptor.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want ocispec.Descriptor
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if errors.Is(err, io.EOF) {
		got := digest.NewDigest(digest.SHA256, v.h)
		if got != v.want.Digest || v.n != v.want.Size {
			return n, errors.New("blob " + v.want.Digest.String() + " does not match its descriptor: " + got.String())
		}
	}
	return n, err
}

type readCloser struct {
	io.ReadCloser
	v *verifyingReader
	f *os.File
}

// Close drains the compressed blob, so its digest is checked even when
// the decompressor stopped short of the end, and closes it.
func (r readCloser) Close() error {
	r.ReadCloser.Close()
	_, err := io.Copy(io.Discard, r.v)
	r.f.Close()
	return err
}

// blobDigest checks a blob's digest and size without reading it whole
// into memory.
func blobDigest(t *testing.T, dir string, d ocispec.Descriptor) {
	t.Helper()
	f, err := os.Open(blobPath(dir, d.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != d.Digest || n != d.Size {
		t.Fatalf("blob %s: digest %s, %d bytes; descriptor says %d", d.Digest, got, n, d.Size)
	}
}

// diffID returns the digest of a layer's uncompressed tar.
func diffID(t *testing.T, dir string, d ocispec.Descriptor) digest.Digest {
	t.Helper()
	rc := openLayer(t, dir, d)
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("layer %s: %v", d.Digest, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return digest.NewDigest(digest.SHA256, h)
}

// layerEntry is one entry of a layer tar with its content's digest.
type layerEntry struct {
	hdr     *tar.Header
	content []byte
}

// readLayer returns a layer's entries in order, with regular files'
// contents.
func readLayer(t *testing.T, dir string, d ocispec.Descriptor) []layerEntry {
	t.Helper()
	rc := openLayer(t, dir, d)
	defer func() {
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	var out []layerEntry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("layer %s: %v", d.Digest, err)
		}
		e := layerEntry{hdr: hdr}
		if hdr.Typeflag == tar.TypeReg {
			if e.content, err = io.ReadAll(tr); err != nil {
				t.Fatalf("layer %s: %s: %v", d.Digest, hdr.Name, err)
			}
		}
		out = append(out, e)
	}
}

// blobNames lists a layout's blobs: two builds of one recipe must give the
// same list.
func blobNames(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	slices.Sort(names)
	return names
}

// sameLayout fails unless two layouts have the same index.json and blobs.
func sameLayout(t *testing.T, a, b string) {
	t.Helper()
	ia, err := os.ReadFile(filepath.Join(a, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	ib, err := os.ReadFile(filepath.Join(b, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ia, ib) {
		t.Errorf("index.json differs:\n%s\n%s", ia, ib)
	}
	if na, nb := blobNames(t, a), blobNames(t, b); !slices.Equal(na, nb) {
		t.Errorf("blobs differ:\n%v\n%v", na, nb)
	}
}
