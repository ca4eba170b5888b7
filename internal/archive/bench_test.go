package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// benchLayers are the layers the benchmarks unpack, synthetic and
// deterministic, with incompressible content so that nothing is a hole:
// "rootfs" is shaped like a distribution's (mostly small files, some large,
// symlinks, hardlinks), "small" is 20000 files of at most 2 KiB (per-entry
// cost). BERTH_BENCH_TAR names an uncompressed tar to add as "file" (a real
// root filesystem gives real numbers).
var benchLayers = sync.OnceValue(func() []benchLayer {
	layers := []benchLayer{synthLayer("rootfs", 200, 20, 256<<10), synthLayer("small", 400, 50, 0)}
	if p := os.Getenv("BERTH_BENCH_TAR"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			panic(err)
		}
		l := benchLayer{name: "file", data: b}
		for range readTarNames(b) {
			l.entries++
		}
		layers = append(layers, l)
	}
	return layers
})

type benchLayer struct {
	name    string
	data    []byte
	entries int
}

// synthLayer makes dirs directories of files files each; maxLarge > 0 mixes
// 60% files under 4 KiB, 32% under 64 KiB and 8% up to maxLarge, else every
// file is under 2 KiB.
func synthLayer(name string, dirs, files, maxLarge int) benchLayer {
	rng := rand.New(rand.NewSource(42))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := make([]byte, 4<<20)
	rng.Read(content)
	n := 0
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format = testTime, tar.FormatPAX
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		tw.Write(body)
		n++
	}
	for d := 0; d < dirs; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d/", d)
		add(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}, nil)
		for f := 0; f < files; f++ {
			size := rng.Intn(2 << 10)
			if maxLarge > 0 {
				switch r := rng.Intn(100); {
				case r < 60:
					size = rng.Intn(4 << 10)
				case r < 92:
					size = 4<<10 + rng.Intn(60<<10)
				default:
					size = 64<<10 + rng.Intn(maxLarge-64<<10)
				}
			}
			off := rng.Intn(len(content) - size)
			name := fmt.Sprintf("%sfile%02d", dir, f)
			add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, content[off:off+size])
			if f%8 == 0 {
				add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name + ".so", Linkname: fmt.Sprintf("file%02d", f), Mode: 0o777}, nil)
			}
		}
		add(&tar.Header{Typeflag: tar.TypeLink, Name: dir + "link", Linkname: dir + "file00"}, nil)
	}
	tw.Close()
	return benchLayer{name: name, data: buf.Bytes(), entries: n}
}

func readTarNames(b []byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err != nil || !yield(h.Name) {
				return
			}
		}
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := Compress(&buf, Gzip)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// benchUnpack runs unpack on each layer into a fresh directory on tmpfs
// per iteration and reports entries/s and MB/s of uncompressed tar.
func benchUnpack(b *testing.B, gz bool, unpack func(dir string, layer []byte) error) {
	for _, l := range benchLayers() {
		b.Run(l.name, func(b *testing.B) {
			data := l.data
			if gz {
				data = gzipped(data)
			}
			b.SetBytes(int64(len(l.data)))
			for b.Loop() {
				b.StopTimer()
				dir, err := os.MkdirTemp("/dev/shm", "berth-bench-")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := unpack(dir, data); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				forceRemove(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(l.entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

func applyLayer(dir string, layer []byte) error {
	r, _, err := Decompress(bytes.NewReader(layer))
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = Apply(context.Background(), dir, r, applyOpts(WhiteoutOverlay))
	return err
}

func BenchmarkApply(b *testing.B)     { benchUnpack(b, false, applyLayer) }
func BenchmarkApplyGzip(b *testing.B) { benchUnpack(b, true, applyLayer) }

// BenchmarkTarX is GNU tar on the same layers, for comparison.
func BenchmarkTarX(b *testing.B) { benchUnpack(b, false, shell(b, `tar -x -C "$0"`)) }

// BenchmarkTarXGzip is `gzip -dc | tar -x` on the same layers.
func BenchmarkTarXGzip(b *testing.B) { benchUnpack(b, true, shell(b, `gzip -dc | tar -x -C "$0"`)) }

func shell(b *testing.B, script string) func(string, []byte) error {
	for _, tool := range []string{"tar", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("no %s", tool)
		}
	}
	return func(dir string, layer []byte) error {
		cmd := exec.Command("sh", "-c", script, dir)
		cmd.Stdin = bytes.NewReader(layer)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
}

func BenchmarkTar(b *testing.B) {
	for _, l := range benchLayers() {
		b.Run(l.name, func(b *testing.B) {
			dir := tmpDir(b)
			if err := applyLayer(dir, l.data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(l.data)))
			for b.Loop() {
				if err := Tar(context.Background(), dir, discard{}, TarOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(l.entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkDecompress is the decompression alone, to tell it from the file
// system's share of BenchmarkApplyGzip.
func BenchmarkDecompress(b *testing.B) {
	for _, l := range benchLayers() {
		for _, c := range []Compression{Gzip, Zstd} {
			b.Run(l.name+"/"+c.String(), func(b *testing.B) {
				var buf bytes.Buffer
				w, _ := Compress(&buf, c)
				w.Write(l.data)
				w.Close()
				b.SetBytes(int64(len(l.data)))
				for b.Loop() {
					r, _, err := Decompress(bytes.NewReader(buf.Bytes()))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						b.Fatal(err)
					}
					r.Close()
				}
			})
		}
	}
}
