package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fuzzLower is the tree a WhiteoutApply layer lands on in FuzzApply: lower
// layer content with ways out planted in it.
func fuzzLower(t *testing.T, s *sandbox) {
	must(t, os.MkdirAll(filepath.Join(s.root, "etc/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(s.root, "etc/passwd"), []byte("root:x:0:0"), 0o644))
	must(t, os.Symlink(s.outside, filepath.Join(s.root, "abs-out")))
	must(t, os.Symlink("../outside", filepath.Join(s.root, "rel-out")))
	must(t, os.Symlink("/", filepath.Join(s.root, "etc/up")))
	must(t, os.Link(filepath.Join(s.outside, "secret"), filepath.Join(s.root, "shared")))
}

// FuzzApply: whatever the tar, Apply does not panic and writes nothing
// outside its root.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.data, s.apply)
	}
	f.Fuzz(func(t *testing.T, data []byte, applyMode bool) {
		s := newSandbox(t)
		opts := applyOpts(WhiteoutOverlay)
		if applyMode {
			opts.Whiteouts = WhiteoutApply
			fuzzLower(t, s)
		}
		s.seal(t)
		// A sparse entry may claim terabytes of holes, which the tar
		// reader yields as zeros: bound the time.
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		Apply(ctx, s.root, bytes.NewReader(data), opts)
		s.check(t)
	})
}

// FuzzDecompress: whatever the stream, Decompress does not panic, and an
// uncompressed stream comes back as it is.
func FuzzDecompress(f *testing.F) {
	for _, s := range decompressSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, c, err := Decompress(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer r.Close()
		out, _ := io.ReadAll(io.LimitReader(r, 64<<20))
		if c == None && !bytes.Equal(out, data) {
			t.Errorf("an uncompressed stream changed: %d bytes in, %d out", len(data), len(out))
		}
	})
}

type applySeed struct {
	name  string
	data  []byte
	apply bool
}

func fuzzSeeds(t testing.TB) []applySeed {
	setuid := reg("bin/su", "#!", 0o4755)
	setuid.hdr.Uid = 1000
	xattr := reg("cap", "x", 0o755)
	xattr.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.trusted.overlay.redirect": "/"}
	seeds := []applySeed{
		{"basic", mkTar(t, dirEnt("etc/", 0o755), reg("etc/hostname", "berth\n", 0o644), symlinkEnt("etc/localtime", "/usr/share/zoneinfo/UTC"),
			hardlinkEnt("etc/hn", "etc/hostname"), tarEntry{hdr: fifoHdr("run/fifo")}, dirEnt("./", 0o755)), false},
		{"whiteouts-overlay", upperLayer(t), false},
		{"whiteouts-apply", upperLayer(t), true},
		{"dotdot", mkTar(t, reg("../outside/secret", "pwned", 0o644)), false},
		{"symlink-escape", mkTar(t, symlinkEnt("evil", "../../.."), reg("evil/outside/secret", "pwned", 0o644)), false},
		{"symlink-absolute", mkTar(t, symlinkEnt("evil", "/etc"), dirEnt("etc/", 0o755), reg("evil/passwd", "pwned", 0o644)), false},
		{"symlink-replaced", mkTar(t, symlinkEnt("f", "../outside/secret"), reg("f", "pwned", 0o644), dirEnt("d", 0o755), symlinkEnt("d", "/")), false},
		{"hardlink-out", mkTar(t, hardlinkEnt("h", "../outside/secret"), hardlinkEnt("h2", "rel-out/secret"), hardlinkEnt("h3", "abs-out/secret")), true},
		{"hardlink-symlink", mkTar(t, symlinkEnt("s", "../outside/secret"), hardlinkEnt("h", "s"), reg("h", "pwned", 0o644)), false},
		{"lower-symlinks", mkTar(t, reg("rel-out/secret", "pwned", 0o644), reg("abs-out/secret", "pwned", 0o644), reg("etc/up/passwd", "x", 0o644), reg("shared", "pwned", 0o644)), true},
		{"whiteout-out", mkTar(t, reg("rel-out/.wh.secret", "", 0), reg("abs-out/.wh.sub", "", 0), reg("etc/up/.wh.etc", "", 0), reg("../.wh.outside", "", 0)), true},
		{"opaque-out", mkTar(t, reg("rel-out/.wh..wh..opq", "", 0), reg("etc/up/.wh..wh..opq", "", 0)), true},
		{"devices", mkTar(t, charEnt("dev/null", 1, 3), charEnt("rel-out/mem", 1, 1), setuid, xattr), false},
		{"root-replaced", mkTar(t, reg(".", "x", 0o644)), false},
	}
	if out, err := gnuSparseTar(t); err == nil {
		seeds = append(seeds, applySeed{"gnu-sparse", out, false})
	}
	return seeds
}

func fifoHdr(name string) tar.Header {
	h := dirEnt(name, 0o600).hdr
	h.Typeflag = '6'
	return h
}

// gnuSparseTar is a GNU tar sparse entry, made by GNU tar.
func gnuSparseTar(t testing.TB) ([]byte, error) {
	if _, err := exec.LookPath("tar"); err != nil {
		return nil, err
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		return nil, err
	}
	f.WriteAt([]byte("data"), 1<<20)
	f.Close()
	return exec.Command("tar", "--sparse", "--format=gnu", "-C", dir, "-cf", "-", "sparse").Output()
}

func decompressSeeds(t testing.TB) [][]byte {
	layer := mkTar(t, reg("f", "content", 0o644))
	out := [][]byte{layer, nil, {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd, 0, 20 << 3, 1, 0, 0},
		{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'x', 'x', 'x', 'x'}}
	for _, c := range []Compression{Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := Compress(&buf, c)
		w.Write(layer)
		w.Close()
		out = append(out, buf.Bytes(), buf.Bytes()[:buf.Len()/2])
	}
	return out
}

// TestWriteFuzzSeeds rewrites testdata/fuzz from the seeds above when
// BERTH_WRITE_FUZZ_SEEDS=1; otherwise it checks the committed corpus is
// there.
func TestWriteFuzzSeeds(t *testing.T) {
	write := os.Getenv("BERTH_WRITE_FUZZ_SEEDS") == "1"
	put := func(target, name, content string) {
		p := filepath.Join("testdata/fuzz", target, name)
		if !write {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("seed %s is missing (BERTH_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds writes it)", p)
			}
			return
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	for _, s := range fuzzSeeds(t) {
		put("FuzzApply", s.name, fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbool(%v)\n", strconv.Quote(string(s.data)), s.apply))
	}
	for i, s := range decompressSeeds(t) {
		put("FuzzDecompress", fmt.Sprintf("seed-%d", i), fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s))))
	}
}
