package images

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestMinbase checks the Debian image: the first run on a machine builds
// it (a minute or two of debootstrap); later runs read the cache.
func TestMinbase(t *testing.T) {
	dir := Minbase(t)
	// The layer is 200 MB of tar: its diff ID is checked below, in the
	// one pass that reads it.
	l := checkLayoutLayers(t, dir, false)
	if l.top.Annotations["org.opencontainers.image.ref.name"] != "bookworm" || l.top.Annotations["io.containerd.image.name"] != MinbaseName {
		t.Errorf("index.json entry annotations %v", l.top.Annotations)
	}
	img := l.images[0]
	if !slices.Equal(img.config.Config.Cmd, []string{"bash"}) || !slices.Equal(img.config.Config.Env, []string{minbasePath}) ||
		len(img.config.History) != 2 || len(img.manifest.Layers) != 1 {
		t.Fatalf("config %+v", img.config)
	}

	rc := openLayer(t, dir, img.manifest.Layers[0])
	defer rc.Close()
	raw := sha256.New()
	tr := tar.NewReader(io.TeeReader(rc, raw))
	hdrs := map[string]*tar.Header{}
	var debianVersion string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[hdr.Name] = hdr
		if hdr.Name == "etc/debian_version" {
			b, _ := io.ReadAll(tr)
			debianVersion = string(b)
		}
		if strings.HasPrefix(hdr.Name, "dev/") && hdr.Name != "dev/" {
			t.Errorf("%s: /dev is not empty", hdr.Name)
		}
		if strings.HasPrefix(hdr.Name, "var/cache/apt/archives/") && strings.HasSuffix(hdr.Name, ".deb") {
			t.Errorf("%s: downloaded package left in the image", hdr.Name)
		}
		if !hdr.ModTime.Equal(minbaseTime) {
			t.Errorf("%s: mtime %v", hdr.Name, hdr.ModTime)
		}
	}
	if _, err := io.Copy(raw, rc); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := digest.NewDigest(digest.SHA256, raw); got != img.config.RootFS.DiffIDs[0] {
		t.Errorf("layer uncompressed %s, diff_ids say %s", got, img.config.RootFS.DiffIDs[0])
	}
	if !strings.HasPrefix(debianVersion, "12.") {
		t.Errorf("etc/debian_version %q, want bookworm's 12.x", debianVersion)
	}
	for name, typ := range map[string]byte{
		"bin": tar.TypeSymlink, "usr/bin/bash": tar.TypeReg, "usr/bin/apt-get": tar.TypeReg,
		"var/lib/dpkg/status": tar.TypeReg, "etc/passwd": tar.TypeReg, "tmp/": tar.TypeDir, "dev/": tar.TypeDir,
	} {
		if h := hdrs[name]; h == nil || h.Typeflag != typ {
			t.Errorf("%s: %+v, want type %q", name, h, typ)
		}
	}
	for _, gone := range []string{"etc/hostname", "etc/resolv.conf"} {
		if _, ok := hdrs[gone]; ok {
			t.Errorf("%s is in the image", gone)
		}
	}
}

// TestWriteDirTar packs a small tree with each kind of file twice and
// expects the same bytes both times and the right headers.
func TestWriteDirTar(t *testing.T) {
	root := t.TempDir()
	mk := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	mk(os.MkdirAll(p("a/b"), 0o755))
	mk(os.WriteFile(p("a/b/file"), []byte("content"), 0o640))
	mk(os.Link(p("a/b/file"), p("a/link")))
	mk(os.Symlink("../a/b/file", p("a/sym")))
	mk(unix.Mkfifo(p("a/fifo"), 0o600))
	mk(os.MkdirAll(p("dev"), 0o755))
	mk(os.WriteFile(p("dev/skipped"), nil, 0o644))
	xattrs := unix.Lsetxattr(p("a/b/file"), "user.test", []byte("v"), 0) == nil
	if os.Geteuid() == 0 {
		mk(unix.Mknod(p("a/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		mk(os.Lchown(p("a/b/file"), 1000, 1001))
	}
	// A socket, which the packer must leave out.
	sock, err := net.Listen("unix", p("a/sock"))
	mk(err)
	defer sock.Close()

	pack := func() (digest.Digest, map[string]*tar.Header) {
		r, w := io.Pipe()
		go func() {
			tw := tar.NewWriter(w)
			err := writeDirTar(tw, root, minbaseTime, minbaseSkip)
			if err == nil {
				err = tw.Close()
			}
			w.CloseWithError(err)
		}()
		h := sha256.New()
		hdrs := map[string]*tar.Header{}
		tr := tar.NewReader(io.TeeReader(r, h))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			mk(err)
			hdrs[hdr.Name] = hdr
		}
		io.Copy(io.Discard, r)
		return digest.NewDigest(digest.SHA256, h), hdrs
	}
	d1, hdrs := pack()
	// A later mtime on disk changes nothing: every entry gets minbaseTime.
	later := time.Now().Add(time.Hour)
	mk(os.Chtimes(p("a/b/file"), later, later))
	d2, _ := pack()
	if d1 != d2 {
		t.Errorf("two packs of one tree: %s and %s", d1, d2)
	}

	want := map[string]byte{"a/": tar.TypeDir, "a/b/": tar.TypeDir, "a/b/file": tar.TypeReg, "a/link": tar.TypeLink,
		"a/sym": tar.TypeSymlink, "a/fifo": tar.TypeFifo, "dev/": tar.TypeDir}
	if os.Geteuid() == 0 {
		want["a/null"] = tar.TypeChar
	}
	var names []string
	for n, h := range hdrs {
		names = append(names, n)
		if want[n] != h.Typeflag {
			t.Errorf("%s: type %q, want %q", n, h.Typeflag, want[n])
		}
	}
	if len(hdrs) != len(want) {
		t.Errorf("entries %q, want those of %v (no socket, nothing under dev/)", names, want)
	}
	if h := hdrs["a/link"]; h != nil && h.Linkname != "a/b/file" {
		t.Errorf("hardlink to %q", h.Linkname)
	}
	if h := hdrs["a/sym"]; h != nil && h.Linkname != "../a/b/file" {
		t.Errorf("symlink to %q", h.Linkname)
	}
	if h := hdrs["a/b/file"]; h != nil {
		if h.Mode != 0o640 || h.Size != 7 {
			t.Errorf("file mode %#o size %d", h.Mode, h.Size)
		}
		if xattrs && h.PAXRecords["SCHILY.xattr.user.test"] != "v" {
			t.Errorf("file xattrs %v", h.PAXRecords)
		}
		if os.Geteuid() == 0 && (h.Uid != 1000 || h.Gid != 1001) {
			t.Errorf("file owner %d:%d", h.Uid, h.Gid)
		}
	}
	if h := hdrs["a/null"]; h != nil && (h.Devmajor != 1 || h.Devminor != 3) {
		t.Errorf("device %d:%d", h.Devmajor, h.Devminor)
	}
}
