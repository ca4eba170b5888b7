package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testBlob is n pseudo-random bytes, the same for the same seed.
func testBlob(seed uint64, n int) ([]byte, ocispec.Descriptor) {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b), Size: int64(n)}
}

// source is the far side of an ingest: a server holding data. Each call of
// open is recorded; the first len(plan) calls follow plan, later ones serve
// data from the offset asked for.
type source struct {
	data []byte
	plan []func(offset int64) io.ReadCloser
	gate chan struct{} // if set, open blocks until it is closed

	mu      sync.Mutex
	offsets []int64
}

func (s *source) open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	call := len(s.offsets)
	s.offsets = append(s.offsets, offset)
	s.mu.Unlock()
	if call < len(s.plan) {
		return s.plan[call](offset), nil
	}
	if offset > int64(len(s.data)) {
		return nil, errors.New("range not satisfiable")
	}
	return io.NopCloser(bytes.NewReader(s.data[offset:])), nil
}

func (s *source) calls() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.offsets...)
}

// failingAfter serves data from offset, then fails with a network-like error
// once n bytes are sent.
func failingAfter(data []byte, n int) func(int64) io.ReadCloser {
	return func(offset int64) io.ReadCloser {
		return io.NopCloser(io.MultiReader(bytes.NewReader(data[offset:offset+int64(n)]), errReader{errors.New("connection reset by peer")}))
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ingestAll ingests desc and returns what the reader yielded.
func ingestAll(t *testing.T, s *Store, desc ocispec.Descriptor, open OpenFunc) ([]byte, error) {
	t.Helper()
	rc, err := s.Ingest(context.Background(), desc, open)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// dirNames lists a directory of the store.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertEmpty fails unless neither blobs/ nor ingest/ holds anything.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	if names := dirNames(t, s.blobs); len(names) != 0 {
		t.Errorf("blobs/sha256 holds %v, want nothing", names)
	}
	if names := dirNames(t, filepath.Join(s.ingest)); len(names) != 0 {
		t.Errorf("ingest holds %v, want nothing", names)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
