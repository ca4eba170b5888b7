package content

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// OpenFunc opens the blob being ingested at offset: the returned reader
// yields the blob's bytes from offset to its end. internal/registry's Fetch
// is one (an HTTP GET with a Range header). A source that ignores offset
// produces a digest mismatch, never a wrong blob.
type OpenFunc func(ctx context.Context, offset int64) (io.ReadCloser, error)

// writeBuffer batches the write-through of small reads (decompressors read
// a few KiB at a time) into fewer write calls. A crash loses at most this
// much of the partial, which is fetched again.
const writeBuffer = 256 << 10

// Ingest returns a reader of the whole blob desc from byte 0, fetching what
// the store lacks:
//
//   - a committed blob is simply opened;
//   - bytes kept from an earlier, interrupted ingest are read from disk, the
//     rest come from open(ctx, offset) and are written to the partial as the
//     caller reads them;
//   - at the end the size and digest are checked and the blob committed
//     before Read returns io.EOF. A mismatch is an error from Read naming
//     both digests (errors.Is ErrDigestMismatch or ErrSizeMismatch) and the
//     partial is removed. Bytes beyond desc.Size are refused at once.
//
// A network error or a Close before EOF keeps the partial for the next
// Ingest to resume. A caller that stops reading early must therefore drain
// the reader if it wants the blob committed.
//
// Concurrent Ingests of one digest share one download: while one caller
// holds the download (in this process or another), the others wait in
// Ingest until it ends and then read the committed blob, or take the
// download over if it failed. So one goroutine must not hold a reader of a
// digest while it calls Ingest for the same digest again. ctx bounds the
// wait and every read.
func (s *Store) Ingest(ctx context.Context, desc ocispec.Descriptor, open OpenFunc) (io.ReadCloser, error) {
	if err := validDescriptor(desc); err != nil {
		return nil, err
	}
	blob, l, err := s.acquire(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	if blob != nil {
		return checkCommitted(blob, desc)
	}
	r, err := newIngestReader(ctx, l, desc, open, false)
	if err != nil {
		l.release()
		return nil, err
	}
	return r, nil
}

// Put stores the blob desc from r, a local source (load, import, a layer
// berth built), with the same checks as Ingest. A blob already committed is
// left alone and r is not read.
func (s *Store) Put(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := validDescriptor(desc); err != nil {
		return err
	}
	blob, l, err := s.acquire(ctx, desc.Digest)
	if err != nil {
		return err
	}
	if blob != nil {
		f, err := checkCommitted(blob, desc)
		if err != nil {
			return err
		}
		return f.Close()
	}
	// A local reader cannot seek to where an old partial ends: start over.
	open := func(context.Context, int64) (io.ReadCloser, error) { return io.NopCloser(r), nil }
	ir, err := newIngestReader(ctx, l, desc, open, true)
	if err != nil {
		l.release()
		return err
	}
	defer ir.Close()
	// Hide io.Discard's ReaderFrom so that the larger buffer is used.
	_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, ir, make([]byte, 1<<20))
	return err
}

// checkCommitted hands out a committed blob if its size agrees with the
// descriptor: the blob was verified when committed, so a different size
// means the descriptor is wrong.
func checkCommitted(f *os.File, desc ocispec.Descriptor) (*os.File, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != desc.Size {
		f.Close()
		return nil, fmt.Errorf("%w: blob %s is %d bytes, the descriptor says %d", ErrSizeMismatch, desc.Digest, fi.Size(), desc.Size)
	}
	return f, nil
}

// ingestReader streams a blob to its caller while writing it to the
// partial, and commits it at the end. It holds the lease until it commits,
// fails or is closed.
type ingestReader struct {
	ctx  context.Context
	l    *lease
	desc ocispec.Descriptor
	open OpenFunc

	f       *os.File // the partial, read from and appended to
	w       *bufio.Writer
	partial int64 // bytes on disk when the ingest started
	pos     int64 // bytes hashed and handed to the caller
	h       hash.Hash
	body    io.ReadCloser
	err     error // sticky: io.EOF after the commit, else the failure
}

func newIngestReader(ctx context.Context, l *lease, desc ocispec.Descriptor, open OpenFunc, fresh bool) (*ingestReader, error) {
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(l.data, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	partial := fi.Size()
	if partial > desc.Size {
		// Not a prefix of this blob: whatever wrote it, start over.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("ingest %s: %w", desc.Digest, err)
		}
		partial = 0
	}
	return &ingestReader{ctx: ctx, l: l, desc: desc, open: open, f: f, partial: partial, h: sha256.New()}, nil
}

func (r *ingestReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := r.ctx.Err(); err != nil {
		return 0, r.fail(false, fmt.Errorf("ingest %s: %w", r.desc.Digest, err))
	}
	if r.pos < r.partial {
		return r.readPartial(p)
	}
	if r.pos == r.desc.Size && r.body == nil {
		// Every byte was on disk already (a crash just before the commit):
		// there is nothing to fetch.
		return 0, r.finish()
	}
	if r.body == nil {
		body, err := r.open(r.ctx, r.pos)
		if err != nil {
			return 0, r.fail(false, fmt.Errorf("fetch %s from offset %d: %w", r.desc.Digest, r.pos, err))
		}
		if _, err := r.f.Seek(r.pos, io.SeekStart); err != nil {
			body.Close()
			return 0, r.fail(false, fmt.Errorf("ingest %s: %w", r.desc.Digest, err))
		}
		r.body = body
		r.w = bufio.NewWriterSize(r.f, writeBuffer)
	}
	remaining := r.desc.Size - r.pos
	if remaining == 0 {
		return 0, r.atEnd()
	}
	n, err := r.body.Read(p[:min(int64(len(p)), remaining)])
	if n > 0 {
		if _, werr := r.w.Write(p[:n]); werr != nil {
			return 0, r.fail(false, fmt.Errorf("ingest %s: %w", r.desc.Digest, werr))
		}
		r.h.Write(p[:n])
		r.pos += int64(n)
	}
	switch {
	case err == io.EOF && r.pos < r.desc.Size:
		// The bytes so far may well be right: keep them for a resume.
		return n, r.fail(false, fmt.Errorf("fetch %s: %w: the source ended after %d of %d bytes", r.desc.Digest, io.ErrUnexpectedEOF, r.pos, r.desc.Size))
	case err != nil && err != io.EOF:
		return n, r.fail(false, fmt.Errorf("fetch %s at offset %d: %w", r.desc.Digest, r.pos, err))
	}
	return n, nil
}

// readPartial hands out (and hashes) bytes a previous ingest left on disk.
func (r *ingestReader) readPartial(p []byte) (int, error) {
	n, err := r.f.ReadAt(p[:min(int64(len(p)), r.partial-r.pos)], r.pos)
	r.h.Write(p[:n])
	r.pos += int64(n)
	if err != nil && !(err == io.EOF && n > 0) {
		return n, r.fail(false, fmt.Errorf("ingest %s: read the partial: %w", r.desc.Digest, err))
	}
	return n, nil
}

// atEnd runs once desc.Size bytes were received: the source must end there.
func (r *ingestReader) atEnd() error {
	var one [1]byte
	for range 100 {
		n, err := r.body.Read(one[:])
		if n > 0 {
			return r.fail(true, fmt.Errorf("%w: %s: the source sent more than the %d bytes the descriptor declares", ErrSizeMismatch, r.desc.Digest, r.desc.Size))
		}
		if err != nil {
			// A transport error after the last byte changes nothing: the
			// digest decides.
			return r.finish()
		}
	}
	return r.fail(false, fmt.Errorf("fetch %s: %w", r.desc.Digest, io.ErrNoProgress))
}

// finish verifies the digest and commits. It returns io.EOF on success.
func (r *ingestReader) finish() error {
	if got := digest.NewDigest(digest.SHA256, r.h); got != r.desc.Digest {
		return r.fail(true, mismatch(r.desc.Digest, got))
	}
	if r.w != nil {
		if err := r.w.Flush(); err != nil {
			return r.fail(false, fmt.Errorf("ingest %s: %w", r.desc.Digest, err))
		}
	}
	if err := r.f.Sync(); err != nil {
		return r.fail(false, fmt.Errorf("ingest %s: fsync: %w", r.desc.Digest, err))
	}
	if err := r.l.commit(); err != nil {
		return r.fail(false, err)
	}
	r.closeFiles()
	r.l.release()
	r.err = io.EOF
	return io.EOF
}

// fail ends the ingest with err. remove says the partial is known to be
// wrong; otherwise it is kept, flushed, for the next ingest to resume.
func (r *ingestReader) fail(remove bool, err error) error {
	if remove {
		r.l.discard()
	} else if r.w != nil {
		r.w.Flush()
	}
	r.closeFiles()
	r.l.release()
	r.err = err
	return err
}

func (r *ingestReader) closeFiles() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Close ends the ingest. Before EOF the bytes received so far stay in the
// partial for a later resume.
func (r *ingestReader) Close() error {
	if r.err == nil {
		r.fail(false, errors.New("ingest reader closed"))
		r.err = os.ErrClosed
	}
	return nil
}
