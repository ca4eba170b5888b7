package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Error kinds; wrapped errors carry the digest, the sizes and the paths.
var (
	ErrNotFound       = errors.New("blob not found")
	ErrInvalid        = errors.New("invalid descriptor")
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrSizeMismatch   = errors.New("size mismatch")
	ErrTooLarge       = errors.New("blob too large")
)

// blobMode is the mode of committed blobs: content is addressed by its
// digest and not secret from other local users who can reach the root
// (the directories above it are 0700).
const blobMode = 0o644

// Store is a content-addressed blob store rooted at one directory. It is
// safe for concurrent use by many goroutines and, through flock, by several
// processes sharing the root.
type Store struct {
	root   string
	blobs  string // root/blobs/sha256
	ingest string // root/ingest

	mu      sync.Mutex
	flights map[digest.Digest]*flight
}

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Open opens the store at root, creating its directories (0700: the blobs
// of a private image are as private as the image) when they are missing.
func Open(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", root, err)
	}
	s := &Store{
		root:    root,
		blobs:   filepath.Join(root, "blobs", "sha256"),
		ingest:  filepath.Join(root, "ingest"),
		flights: map[digest.Digest]*flight{},
	}
	for _, dir := range []string{root, filepath.Join(root, "blobs"), s.blobs, s.ingest} {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("content store: %w", err)
		}
		fi, err := os.Lstat(dir)
		if err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("content store: %s is not a directory", dir)
		}
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// validDigest accepts exactly "sha256:" followed by 64 lower-case hex
// digits, so a digest can be used as a file name without further checks.
func validDigest(d digest.Digest) error {
	alg, hex, ok := bytes.Cut([]byte(d), []byte{':'})
	if !ok {
		return fmt.Errorf("%w: digest %q has no algorithm", ErrInvalid, d)
	}
	if string(alg) != string(digest.SHA256) {
		return fmt.Errorf("%w: digest %q: algorithm %q is not supported (only sha256)", ErrInvalid, d, alg)
	}
	if len(hex) != 2*sha256.Size {
		return fmt.Errorf("%w: digest %q: want %d hex digits, have %d", ErrInvalid, d, 2*sha256.Size, len(hex))
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: digest %q: %q is not a lower-case hex digit", ErrInvalid, d, c)
		}
	}
	return nil
}

func validDescriptor(desc ocispec.Descriptor) error {
	if err := validDigest(desc.Digest); err != nil {
		return err
	}
	if desc.Size < 0 {
		return fmt.Errorf("%w: %s: negative size %d", ErrInvalid, desc.Digest, desc.Size)
	}
	return nil
}

func (s *Store) blobPath(d digest.Digest) string { return filepath.Join(s.blobs, d.Encoded()) }

// Info describes the committed blob d.
func (s *Store) Info(d digest.Digest) (Info, error) {
	if err := validDigest(d); err != nil {
		return Info{}, err
	}
	fi, err := os.Lstat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("blob %s: %s is not a regular file", d, s.blobPath(d))
	}
	return Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open opens the committed blob d for reading (an *os.File is a
// ReadSeekCloser and a ReaderAt). The bytes were verified when the blob was
// committed; ReadBlob verifies them again for small blobs.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := validDigest(d); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.blobPath(d), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return f, err
}

// ReadBlob reads a whole committed blob of at most limit bytes: manifests,
// indexes and configs. A descriptor larger than limit is refused before
// anything is read, and the bytes are checked against the descriptor's size
// and digest again, so a blob changed on disk since its commit is noticed.
func (s *Store) ReadBlob(desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := validDescriptor(desc); err != nil {
		return nil, err
	}
	if desc.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrTooLarge, desc.Digest, desc.Size, limit)
	}
	f, err := s.Open(desc.Digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One byte more than declared reveals a longer file without reading it
	// all.
	buf, err := io.ReadAll(io.LimitReader(f, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if int64(len(buf)) != desc.Size {
		return nil, fmt.Errorf("%w: blob %s: descriptor says %d bytes, store has %d or more", ErrSizeMismatch, desc.Digest, desc.Size, len(buf))
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, sumOf(buf)); got != desc.Digest {
		return nil, mismatch(desc.Digest, got)
	}
	return buf, nil
}

func sumOf(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

func mismatch(want, got digest.Digest) error {
	return fmt.Errorf("%w: expected %s, got %s", ErrDigestMismatch, want, got)
}

// Walk calls fn for every committed blob, in digest order. Files in blobs/
// that are not named like a sha256 digest are skipped. An error from fn
// stops the walk and is returned.
func (s *Store) Walk(fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobs)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if validDigest(d) != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the committed blob d. Readers that opened it keep reading
// it (the inode lives until they close it).
func (s *Store) Delete(d digest.Digest) error {
	if err := validDigest(d); err != nil {
		return err
	}
	err := os.Remove(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return err
}

// Usage is the bytes held by the store: committed blobs and partial
// downloads, by their length.
func (s *Store) Usage() (int64, error) {
	var total int64
	if err := s.Walk(func(i Info) error { total += i.Size; return nil }); err != nil {
		return 0, err
	}
	parts, err := s.Partials()
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		total += p.Size
	}
	return total, nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
