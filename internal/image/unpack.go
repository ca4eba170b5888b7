package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/snapshot"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// layerSource is one layer to unpack: its blob, the diff ID the config
// promises for its uncompressed tar, and where to fetch the blob from when
// the content store lacks it (nil: it must be there already).
type layerSource struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
	open   content.OpenFunc
}

// maxParallelLayers bounds how many layers are fetched and extracted at
// once: enough to keep the network and every core busy, few enough that a
// 100-layer image does not open 100 connections.
const maxParallelLayers = 6

// extractPrefix starts the key of every extraction snapshot, so GC can
// tell a crashed extraction from a container's snapshot.
const extractPrefix = "extract-"

// unpack makes sure a committed snapshot exists for the chain ID of every
// layer. Where the snapshotter's extractions are independent of their
// parent (overlay), every layer is fetched and extracted at once and the
// snapshots committed in order as they finish; otherwise blobs are still
// fetched at once, but extracted in order onto copies of their parents.
func (s *Service) unpack(ctx context.Context, layers []layerSource, progress ProgressFunc) error {
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.diffID
	}
	chains := chainIDs(diffIDs)

	// The first missing chain ID: every layer below it exists (a chain ID
	// covers its whole parent chain).
	first := len(layers)
	for i := len(layers) - 1; i >= 0; i-- {
		if s.committed(ctx, chains[i]) {
			break
		}
		first = i
	}
	for i := 0; i < first; i++ {
		progress(Progress{ID: shortID(layers[i].desc.Digest), Status: "Already exists"})
	}
	if first == len(layers) {
		return nil
	}
	for i := first; i < len(layers); i++ {
		progress(Progress{ID: shortID(layers[i].desc.Digest), Status: "Pulling fs layer"})
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel := s.snaps.Caps().ParallelExtract
	sem := make(chan struct{}, maxParallelLayers)
	done := make([]chan struct{}, len(layers))
	errs := make([]error, len(layers))
	for i := range done {
		done[i] = make(chan struct{})
		if i < first {
			close(done[i])
		}
	}
	waitParent := func(i int) error {
		if i == 0 {
			return nil
		}
		select {
		case <-done[i-1]:
			if errs[i-1] != nil {
				return errParentFailed
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := first; i < len(layers); i++ {
		go func() {
			defer close(done[i])
			l := layers[i]
			var parent string
			if i > 0 {
				parent = chains[i-1].String()
			}
			err := s.unpacking.do(ctx, chains[i].String(), func() error {
				if s.committed(ctx, chains[i]) {
					return nil
				}
				id := shortID(l.desc.Digest)
				p := &layerProgress{id: id, total: l.desc.Size, report: progress}
				if len(sem) == cap(sem) {
					progress(Progress{ID: id, Status: "Waiting"})
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				var key string
				var size int64
				var err error
				if parallel {
					key, size, err = s.extract(ctx, l, parent, p)
					<-sem
				} else {
					// Fetch now, extract when the parent is there.
					err = s.fetchOnly(ctx, l, p)
					<-sem
					if err == nil {
						err = waitParent(i)
					}
					if err == nil {
						key, size, err = s.extract(ctx, l, parent, p)
					}
				}
				if err != nil {
					return err
				}
				if err := waitParent(i); err != nil {
					s.removeSnapshot(key)
					return err
				}
				if err := s.commitLayer(ctx, chains[i], l.diffID, key, size); err != nil {
					return err
				}
				progress(Progress{ID: id, Status: "Pull complete"})
				return nil
			})
			if err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	for i := first; i < len(layers); i++ {
		<-done[i]
	}
	// The first real failure explains the others (cancelled, parent failed).
	var firstErr error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, errParentFailed) && !errors.Is(err, context.Canceled) {
			return err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

var errParentFailed = errors.New("the layer below failed")

func (s *Service) committed(ctx context.Context, chain digest.Digest) bool {
	info, err := s.snaps.Stat(ctx, chain.String())
	return err == nil && info.Kind == snapshot.Committed
}

func (s *Service) removeSnapshot(key string) {
	if key != "" {
		// Best effort: GC finds what is left by its label.
		_ = s.snaps.Remove(context.Background(), key)
	}
}

// fetchOnly brings a layer's blob into the content store without
// extracting it.
func (s *Service) fetchOnly(ctx context.Context, l layerSource, p *layerProgress) error {
	if l.open == nil {
		return nil
	}
	rc, err := s.content.Ingest(ctx, l.desc, l.open)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, p.reader(rc)); err != nil {
		return fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	p.downloaded()
	return nil
}

// extract writes one layer into a new extraction snapshot and returns its
// key and the bytes of file content written. The blob is read through the
// content store (fetched as it is read where it is missing), its digest
// checked there, and the uncompressed tar's digest checked against the
// diff ID here; a layer that fails either check leaves nothing behind.
func (s *Service) extract(ctx context.Context, l layerSource, parent string, p *layerProgress) (key string, size int64, err error) {
	key = extractKey(l.diffID)
	dir, err := s.snaps.Extract(ctx, key, parent)
	if err != nil {
		return "", 0, fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	defer func() {
		if err != nil {
			s.removeSnapshot(key)
			err = fmt.Errorf("layer %s: %w", l.desc.Digest, err)
		}
	}()
	var rc io.ReadCloser
	if l.open != nil {
		rc, err = s.content.Ingest(ctx, l.desc, l.open)
	} else {
		rc, err = s.content.Ingest(ctx, l.desc, func(context.Context, int64) (io.ReadCloser, error) {
			return nil, fmt.Errorf("blob %s is not in the content store", l.desc.Digest)
		})
	}
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	blob := p.reader(rc)
	// A layer that will not unpack may be a blob that is not what the
	// manifest says: read it to the end so the content store can tell, and
	// report that (the cause) rather than the tar error it led to. The
	// store then also drops the bad bytes instead of keeping them to
	// resume.
	defer func() {
		if err != nil {
			if _, blobErr := io.Copy(io.Discard, blob); blobErr != nil {
				err = blobErr
			}
		}
	}()
	tarStream, _, err := archive.Decompress(blob)
	if err != nil {
		return "", 0, err
	}
	defer tarStream.Close()
	h := digest.Canonical.Digester()
	whiteouts := archive.WhiteoutApply
	if s.snaps.Caps().OverlayWhiteouts {
		whiteouts = archive.WhiteoutOverlay
	}
	stats, err := archive.Apply(ctx, dir, io.TeeReader(tarStream, h.Hash()), archive.ApplyOptions{Whiteouts: whiteouts})
	if err != nil {
		return "", 0, err
	}
	// A tar ends before its stream does (padding, the compressor's
	// trailer): read both to the end, so the diff ID covers every byte and
	// the content store verifies and commits the blob.
	if _, err := io.Copy(h.Hash(), tarStream); err != nil {
		return "", 0, err
	}
	if _, err := io.Copy(io.Discard, blob); err != nil {
		return "", 0, err
	}
	p.downloaded()
	if got := h.Digest(); got != l.diffID {
		return "", 0, fmt.Errorf("uncompressed content is %s, but the image config's diff ID is %s", got, l.diffID)
	}
	p.extracting()
	if err := syncDir(dir); err != nil {
		return "", 0, err
	}
	return key, stats.Size, nil
}

// syncDir flushes the file system dir is on, once per layer instead of
// once per file: a committed snapshot must survive a power cut.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// commitLayer commits an extraction as chain and records its size; a
// chain another pull committed first wins, and this copy goes.
func (s *Service) commitLayer(ctx context.Context, chain, diffID digest.Digest, key string, size int64) error {
	err := s.snaps.Commit(ctx, chain.String(), key, nil)
	if errors.Is(err, snapshot.ErrAlreadyExists) {
		s.removeSnapshot(key)
		err = nil
	}
	if err != nil {
		s.removeSnapshot(key)
		return fmt.Errorf("commit layer %s: %w", chain, err)
	}
	return s.meta.update(func(b buckets) error {
		return putJSON(b.layers, chain.String(), layerRecord{DiffID: diffID, Size: size})
	})
}

func extractKey(diffID digest.Digest) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return extractPrefix + hex.EncodeToString(r[:]) + "-" + diffID.Encoded()[:12]
}

// shortID is docker's 12-character form of a digest.
func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// layerProgress turns bytes read from a layer's blob into docker's
// progress lines, at most a few per second.
type layerProgress struct {
	id     string
	total  int64
	report ProgressFunc
	read   atomic.Int64
	mu     sync.Mutex
	last   time.Time
}

func (p *layerProgress) reader(r io.Reader) io.Reader { return &progressReader{r: r, p: p} }

func (p *layerProgress) add(n int) {
	cur := p.read.Add(int64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.report(Progress{ID: p.id, Status: "Downloading", Current: cur, Total: p.total})
	}
}

func (p *layerProgress) downloaded() {
	p.report(Progress{ID: p.id, Status: "Verifying Checksum"})
	p.report(Progress{ID: p.id, Status: "Download complete"})
}

func (p *layerProgress) extracting() {
	p.report(Progress{ID: p.id, Status: "Extracting", Current: p.total, Total: p.total})
}

type progressReader struct {
	r io.Reader
	p *layerProgress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.add(n)
	}
	return n, err
}
