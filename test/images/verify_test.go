package images

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: device nodes, owners and security.capability")
	}
}

// applyWithTar unpacks layers into dir with GNU tar, an unpacker written
// by others: whiteouts, opaque markers and directories replaced by files
// are handled before each layer is extracted (tar knows none of them),
// the rest (owners, modes, xattrs, devices, hardlinks) is tar's.
func applyWithTar(t *testing.T, layout string, layers []ocispec.Descriptor, dir string) {
	t.Helper()
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	for _, d := range layers {
		rc := openLayer(t, layout, d)
		raw, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(hdr.Name, "/")
			base, parent := filepath.Base(name), filepath.Dir(name)
			switch {
			case base == ".wh..wh..opq":
				children, _ := os.ReadDir(filepath.Join(dir, parent))
				for _, c := range children {
					if err := os.RemoveAll(filepath.Join(dir, parent, c.Name())); err != nil {
						t.Fatal(err)
					}
				}
			case strings.HasPrefix(base, ".wh."):
				if err := os.RemoveAll(filepath.Join(dir, parent, strings.TrimPrefix(base, ".wh."))); err != nil {
					t.Fatal(err)
				}
			default:
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err == nil && fi.IsDir() != (hdr.Typeflag == tar.TypeDir) {
					if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		cmd := exec.Command(gnuTar, "-x", "-C", dir, "--numeric-owner", "--same-owner", "--same-permissions",
			"--xattrs", "--xattrs-include=*", "--exclude=.wh.*", "-f", "-")
		cmd.Stdin = bytes.NewReader(raw)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar -x layer %s: %v: %s", d.Digest, err, out)
		}
	}
}

// TestVerify unpacks Layered with GNU tar and checks it with Verify, then
// breaks the tree in ways an unpacker could and expects Verify to name
// each.
func TestVerify(t *testing.T) {
	needRoot(t)
	layout := Layered(t)
	img := checkLayout(t, layout).images[0]
	dir := t.TempDir()
	applyWithTar(t, layout, img.manifest.Layers, dir)
	want := LayeredExpect()
	if err := want.Verify(dir); err != nil {
		t.Fatalf("Layered unpacked by GNU tar does not verify:\n%v", err)
	}

	p := func(rel string) string { return filepath.Join(dir, rel) }
	// Each breakage, by the lines of Verify's report it must cause; a
	// second line is the breakage seen by a second rule.
	breakages := map[string]func() error{
		"srv/private: mode 0755":          func() error { return os.Chmod(p("srv/private"), 0o755) },
		"var/lib/opaque lists [\"extra\"": func() error { return os.WriteFile(p("var/lib/opaque/extra"), nil, 0o644) },
		"etc/app/removed.txt: exists\netc/app lists": func() error {
			return os.WriteFile(p("etc/app/removed.txt"), nil, 0o644)
		},
		"links/hard-b: not the same inode": func() error {
			b, err := os.ReadFile(p("links/hard-b"))
			if err == nil {
				err = os.Remove(p("links/hard-b"))
			}
			if err == nil {
				err = os.WriteFile(p("links/hard-b"), b, 0o644)
			}
			if err == nil {
				err = os.Chtimes(p("links/hard-b"), layeredTime, layeredTime)
			}
			return err
		},
		"bin/netbind: xattrs": func() error {
			return unix.Removexattr(p("bin/netbind"), "security.capability")
		},
		"links/rel: target": func() error {
			if err := os.Remove(p("links/rel")); err != nil {
				return err
			}
			return os.Symlink("/etc/app/config.txt", p("links/rel"))
		},
		"srv/owned/unnamed-ids: owner": func() error { return os.Lchown(p("srv/owned/unnamed-ids"), 0, 0) },
		"dev/mynull: device":           func() error { return replaceNode(p("dev/mynull"), unix.S_IFCHR|0o666, unix.Mkdev(1, 5)) },
		"srv/sparse: content": func() error {
			f, err := os.OpenFile(p("srv/sparse"), os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{1}, 4096)
			return err
		},
	}
	for _, b := range breakages {
		if err := b(); err != nil {
			t.Fatal(err)
		}
	}
	err := want.Verify(dir)
	if err == nil {
		t.Fatal("Verify passed a broken tree")
	}
	lines := 0
	for what := range breakages {
		for _, w := range strings.Split(what, "\n") {
			lines++
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Verify did not report %q; it said:\n%v", w, err)
			}
		}
	}
	// Only the breakages are reported.
	if n := strings.Count(err.Error(), "\n") + 1; n != lines {
		t.Errorf("Verify reported %d problems, the breakages make %d:\n%v", n, lines, err)
	}
}

func replaceNode(path string, mode uint32, dev uint64) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	if err := unix.Mknod(path, mode, int(dev)); err != nil {
		return err
	}
	if err := unix.Chmod(path, mode&0o7777); err != nil {
		return err
	}
	return os.Chtimes(path, layeredTime, layeredTime)
}

// TestVerifyRefusesSymlinkedParents: a tree whose directory is a symlink
// is reported, not followed out of the root.
func TestVerifyRefusesSymlinkedParents(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	e := Expect{Entries: map[string]Entry{"d/f": {Kind: KindFile, Mode: 0o644, UID: os.Geteuid(), GID: os.Getegid()}}}
	err := e.Verify(dir)
	if err == nil || !strings.Contains(err.Error(), "parent d is a symlink") {
		t.Errorf("Verify through a symlinked parent: %v", err)
	}
}
