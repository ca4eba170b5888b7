package engine_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
)

// tarEntry is one entry of a test tar: a directory (name ends in "/"),
// a symlink (link set) or a file.
type tarEntry struct{ name, data, link string }

func tarOf(t *testing.T, entries ...tarEntry) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		switch {
		case strings.HasSuffix(e.name, "/"):
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.data))
	}
	tw.Close()
	return &buf
}

// readTar returns a tar's entries: name -> content, or "->target" for a
// symlink, "/" for a directory.
func readTar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			out[hdr.Name] = "/"
		case tar.TypeSymlink:
			out[hdr.Name] = "->" + hdr.Linkname
		default:
			b, _ := io.ReadAll(tr)
			out[hdr.Name] = string(b)
		}
	}
}

func (v *env) copyFrom(id, p string) map[string]string {
	v.t.Helper()
	rc, _, err := v.e.CopyFrom(ctx(v.t), id, p)
	if err != nil {
		v.t.Fatalf("copy from %s: %v", p, err)
	}
	defer rc.Close()
	return readTar(v.t, rc)
}

// docker cp in and out of a stopped container: files, directories,
// volumes, and symlinks that point outside the container, which must
// resolve inside it (CVE-2018-15664); then diff and export.
func TestCopyStopped(t *testing.T) {
	v := newEnv(t)
	id := v.create("cp", nil, &container.HostConfig{Binds: []string{"vol:/data"}})
	testCopy(t, v, id)

	changes, err := v.e.Changes(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	for _, want := range []string{"C /tmp", "A /tmp/d", "A /tmp/d/f", "A /tmp/esc", "C /etc", "A /etc/marker"} {
		if !slices.Contains(got, want) {
			t.Errorf("changes %q lack %q", got, want)
		}
	}
	if slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "A /data/") }) {
		t.Errorf("changes show the volume's content: %q", got)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(v.e.Export(ctx(t), id, pw)) }()
	exported := readTar(t, pr)
	if exported["tmp/d/f"] != "hello" || exported["etc/marker"] != "inside" {
		t.Errorf("export lacks the container's files: tmp/d/f=%q etc/marker=%q", exported["tmp/d/f"], exported["etc/marker"])
	}
	if _, ok := exported["bin/busybox"]; !ok {
		t.Error("export lacks the image's files")
	}
	if _, ok := exported["data/v"]; ok {
		t.Error("export includes the volume's content")
	}
	if m := mountsBelow(v.root); len(m) > 1 {
		t.Errorf("copy left mounts: %v", m)
	}
}

func testCopy(t *testing.T, v *env, id string) {
	err := v.e.CopyTo(ctx(t), id, "/tmp", tarOf(t,
		tarEntry{name: "d/"},
		tarEntry{name: "d/f", data: "hello"},
		tarEntry{name: "esc", link: "/"},
		tarEntry{name: "up", link: "../../../../../../../.."},
	), engine.CopyToOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Extracting through the symlinks lands in the container's /etc.
	if err := v.e.CopyTo(ctx(t), id, "/tmp/esc/etc", tarOf(t, tarEntry{name: "marker", data: "inside"}), engine.CopyToOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := v.e.CopyTo(ctx(t), id, "/tmp/up/etc", tarOf(t, tarEntry{name: "marker2", data: "inside"}), engine.CopyToOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/etc/marker", "/etc/marker2"} {
		if _, err := os.Stat(f); err == nil {
			t.Fatalf("docker cp wrote the host's %s", f)
		}
		st, err := v.e.StatPath(ctx(t), id, f)
		if err != nil || st.Size != 6 || st.Name != filepath.Base(f) {
			t.Errorf("stat %s in the container: %+v %v", f, st, err)
		}
	}
	// A tar that plants a symlink and then writes through it stays
	// inside too.
	err = v.e.CopyTo(ctx(t), id, "/tmp", tarOf(t, tarEntry{name: "hop", link: "/etc"}, tarEntry{name: "hop/marker3", data: "x"}), engine.CopyToOptions{})
	if _, serr := os.Stat("/etc/marker3"); serr == nil {
		os.Remove("/etc/marker3")
		t.Fatal("a tar wrote through its own symlink into the host's /etc")
	}
	_ = err // refusing the entry or writing inside are both safe

	if got := v.copyFrom(id, "/tmp/d"); got["d/"] != "/" || got["d/f"] != "hello" || len(got) != 2 {
		t.Errorf("copy out of a directory: %v", got)
	}
	if got := v.copyFrom(id, "/tmp/d/."); got["./f"] != "hello" {
		t.Errorf("copy out of a directory's content: %v", got)
	}
	if got := v.copyFrom(id, "/tmp/esc"); got["esc"] != "->/" || len(got) != 1 {
		t.Errorf("copy out of a symlink (not followed): %v", got)
	}
	// Followed, the symlinks lead to the container's /etc, not the host's.
	for _, p := range []string{"/tmp/esc/etc/", "/tmp/up/etc/"} {
		got := v.copyFrom(id, p)
		if got["etc/marker"] != "inside" {
			t.Errorf("copy out of %s: no container /etc/marker in %v", p, got)
		}
		if _, ok := got["etc/debian_version"]; ok {
			t.Errorf("copy out of %s reached the host's /etc", p)
		}
	}
	st, err := v.e.StatPath(ctx(t), id, "/tmp/esc")
	if err != nil || st.Mode&fs.ModeSymlink == 0 || st.LinkTarget != "/" {
		t.Errorf("stat of a symlink: %+v %v", st, err)
	}
	// Volumes are where the container sees them.
	if err := v.e.CopyTo(ctx(t), id, "/data", tarOf(t, tarEntry{name: "v", data: "in the volume"}), engine.CopyToOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.cfg.DataRoot, "volumes", "vol", "_data", "v")); err != nil || string(b) != "in the volume" {
		t.Errorf("volume content on the host: %q %v", b, err)
	}
	if got := v.copyFrom(id, "/data/v"); got["v"] != "in the volume" {
		t.Errorf("copy out of a volume: %v", got)
	}
	if _, _, err := v.e.CopyFrom(ctx(t), id, "/nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("copy of a missing path: %v", err)
	}
	if err := v.e.CopyTo(ctx(t), id, "/tmp/d/f", tarOf(t, tarEntry{name: "x", data: "x"}), engine.CopyToOptions{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("extract onto a file: %v", err)
	}
	if err := v.e.CopyTo(ctx(t), id, "/tmp", tarOf(t, tarEntry{name: "d", data: "x"}), engine.CopyToOptions{NoOverwriteDirNonDir: true}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("noOverwriteDirNonDir: %v", err)
	}
}

// docker cp against a running container goes through its init's root,
// volumes included; diff shows deletions as the overlay records them.
func TestCopyRunningAndDiff(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("rm /etc/group; touch /tmp/new; sleep 1000"), &container.HostConfig{Binds: []string{"vol:/data"}})
	v.start(id)
	waitFor(t, 5*time.Second, "the script", func() bool {
		_, err := v.e.StatPath(ctx(t), id, "/tmp/new")
		return err == nil
	})
	testCopy(t, v, id)
	// The running process sees what was copied in.
	x, err := v.e.ExecCreate(ctx(t), id, container.ExecCreateRequest{Cmd: []string{"cat", "/tmp/d/f", "/etc/marker", "/data/v"}, AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if err := v.e.ExecStart(ctx(t), x, engine.ExecStartOptions{Stdout: &out}); err != nil || out.String() != "helloinsidein the volume" {
		t.Errorf("copied files seen by the container: %q %v", out.String(), err)
	}
	changes, err := v.e.Changes(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	for _, want := range []string{"D /etc/group", "A /tmp/new", "C /etc", "A /tmp/d/f"} {
		if !slices.Contains(got, want) {
			t.Errorf("changes %q lack %q", got, want)
		}
	}
}
