package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCompressDecompressRoundTrip(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(data[:1<<20]) // incompressible, then zeros
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := Compress(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if c != None && buf.Len() >= len(data) {
				t.Errorf("%s did not compress: %d bytes", c, buf.Len())
			}
			r, got, err := Decompress(&buf)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got != c {
				t.Errorf("detected %s, want %s", got, c)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("round trip changed the data (%d bytes back)", len(out))
			}
		})
	}
}

func TestCompressDeterministic(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		var a, b bytes.Buffer
		for _, buf := range []*bytes.Buffer{&a, &b} {
			w, _ := Compress(buf, c)
			w.Write([]byte("the same layer, twice"))
			w.Close()
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s output differs between two runs", c)
		}
	}
}

func TestDecompressShortAndUnsupported(t *testing.T) {
	for _, in := range [][]byte{nil, {0x1f}, []byte("ustar")} {
		r, c, err := Decompress(bytes.NewReader(in))
		if err != nil || c != None {
			t.Fatalf("Decompress(%q) = %v, %v; want none", in, c, err)
		}
		out, _ := io.ReadAll(r)
		if !bytes.Equal(out, in) {
			t.Errorf("Decompress(%q) read %q", in, out)
		}
	}
	for name, in := range map[string][]byte{
		"xz":    {0xfd, '7', 'z', 'X', 'Z', 0, 1, 2},
		"bzip2": []byte("BZh91AY&SY"),
	} {
		if _, _, err := Decompress(bytes.NewReader(in)); !errors.Is(err, ErrUnsupportedCompression) {
			t.Errorf("%s: got %v, want ErrUnsupportedCompression", name, err)
		}
	}
	if _, err := Compress(io.Discard, Compression(7)); !errors.Is(err, ErrUnsupportedCompression) {
		t.Errorf("Compress(7): %v", err)
	}
	if _, _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0})); err == nil {
		t.Error("a truncated gzip header was accepted")
	}
}

// A zstd frame whose header asks for a 1 GiB window is refused before the
// decoder allocates it.
func TestDecompressZstdWindowLimit(t *testing.T) {
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, // magic
		0x00,       // frame header descriptor: no content size, not single segment
		20 << 3,    // window descriptor: exponent 20, 2^(10+20) = 1 GiB
		0x01, 0, 0, // last raw block of size 0
	}
	r, c, err := Decompress(bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if c != Zstd {
		t.Fatalf("detected %s", c)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, zstd.ErrWindowSizeExceeded) {
		t.Fatalf("got %v, want the window limit to refuse the frame", err)
	}
	// The same frame with a 1 MiB window decodes (to nothing).
	frame[5] = 10 << 3
	r2, _, _ := Decompress(bytes.NewReader(frame))
	defer r2.Close()
	if out, err := io.ReadAll(r2); err != nil || len(out) != 0 {
		t.Fatalf("a 1 MiB window frame: %q, %v", out, err)
	}
}

func TestCompressionString(t *testing.T) {
	if None.String() != "none" || Gzip.String() != "gzip" || Zstd.String() != "zstd" || Compression(9).String() != "compression(9)" {
		t.Error("Compression.String")
	}
}
