package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a layer blob.
type Compression int

const (
	None Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// ErrUnsupportedCompression is returned for streams in a compression that
// layers may not use here (bzip2, xz) or an unknown Compression value.
var ErrUnsupportedCompression = errors.New("unsupported compression")

// zstdMaxWindow bounds the window a zstd frame may ask for. 128 MiB covers
// every standard level up to --ultra -22 and --long (window log 27); a
// hostile frame header that claims more is refused instead of making the
// decoder allocate it.
const zstdMaxWindow = 1 << 27

// zstdConcurrency bounds the blocks one stream decodes in flight: each holds
// a window-sized history, and a pull decodes several layers at once.
const zstdConcurrency = 2

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte{'B', 'Z', 'h'}
)

// isZstdSkippable reports a zstd skippable frame (magic 0x184D2A5?, little
// endian), which may open a zstd stream before its first data frame.
func isZstdSkippable(b []byte) bool {
	return len(b) >= 4 && b[0]&0xf0 == 0x50 && b[1] == 0x2a && b[2] == 0x4d && b[3] == 0x18
}

// Detect names the compression of a stream from its first bytes.
func detect(head []byte) (Compression, error) {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip, nil
	case bytes.HasPrefix(head, magicZstd), isZstdSkippable(head):
		return Zstd, nil
	case bytes.HasPrefix(head, magicXz):
		return None, fmt.Errorf("%w: xz", ErrUnsupportedCompression)
	case bytes.HasPrefix(head, magicBzip2):
		return None, fmt.Errorf("%w: bzip2", ErrUnsupportedCompression)
	}
	return None, nil
}

// Decompress returns the uncompressed content of r, detecting gzip and zstd
// by their magic numbers; anything else is returned as it is (an
// uncompressed tar). Closing the result releases the decoder, not r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, None, fmt.Errorf("read compression magic: %w", err)
	}
	c, err := detect(head)
	if err != nil {
		return nil, None, err
	}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("open gzip stream: %w", err)
		}
		return zr, Gzip, nil
	case Zstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow),
			zstd.WithDecoderConcurrency(zstdConcurrency))
		if err != nil {
			return nil, Zstd, fmt.Errorf("open zstd stream: %w", err)
		}
		return zstdReadCloser{zr}, Zstd, nil
	}
	return io.NopCloser(br), None, nil
}

// zstdReadCloser gives the zstd decoder, whose Close returns nothing, the
// io.ReadCloser shape. Close stops the decoder's goroutines.
type zstdReadCloser struct{ d *zstd.Decoder }

func (z zstdReadCloser) Read(p []byte) (int, error) { return z.d.Read(p) }
func (z zstdReadCloser) Close() error               { z.d.Close(); return nil }

// Compress returns a writer that compresses into w. Close flushes the
// compressor's trailer; it does not close w. The output is deterministic:
// the gzip header carries no name and no time.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedCompression, c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
