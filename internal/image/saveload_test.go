package image_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/test/images"
	"github.com/berth-project/berth/test/registry"
	digest "github.com/opencontainers/go-digest"
)

// save -> rmi -> load gives back the same images: IDs, manifests, names.
func TestSaveRemoveLoad(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	reg.Push(t, images.Busybox(t), "berth-test/busybox:latest")
	reg.Push(t, images.Layered(t), "berth-test/layered:latest")
	bb, err := svc.Pull(ctx(t), reg.Host+"/berth-test/busybox", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layered, err := svc.Pull(ctx(t), reg.Host+"/berth-test/layered", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Tag(ctx(t), bb.ID.String(), "mybusybox:v1"); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := svc.Save(ctx(t), []string{reg.Host + "/berth-test/busybox", "mybusybox:v1", reg.Host + "/berth-test/layered"}, &archive); err != nil {
		t.Fatal(err)
	}
	saved := archive.Bytes()
	for _, n := range []string{reg.Host + "/berth-test/busybox", "mybusybox:v1", reg.Host + "/berth-test/layered"} {
		if _, err := svc.Remove(ctx(t), n, false, false); err != nil {
			t.Fatalf("rmi %s: %v", n, err)
		}
	}
	if imgs, _ := svc.List(ctx(t), image.ListOptions{}); len(imgs) != 0 {
		t.Fatalf("%d images left after rmi", len(imgs))
	}
	log := newProgressLog()
	loaded, err := svc.Load(ctx(t), bytes.NewReader(saved), log.fn)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(loaded)
	want := []string{"Loaded image: " + reg.Host + "/berth-test/busybox:latest", "Loaded image: " + reg.Host + "/berth-test/layered:latest", "Loaded image: mybusybox:v1"}
	if !slices.Equal(loaded, want) {
		t.Errorf("loaded %q, want %q", loaded, want)
	}
	for _, c := range []struct {
		name string
		was  *image.Image
	}{{"mybusybox:v1", bb}, {reg.Host + "/berth-test/busybox", bb}, {reg.Host + "/berth-test/layered", layered}} {
		got, err := svc.Get(ctx(t), c.name)
		if err != nil {
			t.Errorf("%s after load: %v", c.name, err)
			continue
		}
		if got.ID != c.was.ID || got.Target.Digest != c.was.Target.Digest {
			t.Errorf("%s: id %s manifest %s after load, was %s %s", c.name, got.ID, got.Target.Digest, c.was.ID, c.was.Target.Digest)
		}
	}
	img, _ := svc.Get(ctx(t), reg.Host+"/berth-test/layered")
	if err := images.LayeredExpect().Verify(mountImage(t, svc, img)); err != nil {
		t.Error(err)
	}
}

// Archives written by other tools: docker 25+'s docker save (uncompressed
// layers, manifest.json) and an oci-archive (skopeo, podman).
func TestLoadForeignArchives(t *testing.T) {
	for _, format := range []images.Format{images.DockerArchive, images.OCIArchive} {
		t.Run(string(format), func(t *testing.T) {
			svc, _ := newStore(t)
			f, err := os.Open(images.Archive(t, images.Layered(t), format))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			loaded, err := svc.Load(ctx(t), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(loaded, "Loaded image: berth-test/layered:latest") {
				t.Errorf("loaded %q", loaded)
			}
			img, err := svc.Get(ctx(t), "berth-test/layered:latest")
			if err != nil {
				t.Fatal(err)
			}
			if err := images.LayeredExpect().Verify(mountImage(t, svc, img)); err != nil {
				t.Error(err)
			}
		})
	}
}

// A hostile archive: a blob whose bytes are not its name's digest, and an
// entry that climbs out of the archive.
func TestLoadHostileArchive(t *testing.T) {
	svc, root := newStore(t)
	build := func(entries map[string]string) io.Reader {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range entries {
				if !yield(k) {
					return
				}
			}
		}) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(entries[name])), Typeflag: tar.TypeReg})
			tw.Write([]byte(entries[name]))
		}
		tw.Close()
		return &buf
	}
	lie := digest.FromString("something else")
	_, err := svc.Load(ctx(t), build(map[string]string{"blobs/sha256/" + lie.Encoded(): "not that", "index.json": `{"schemaVersion":2,"manifests":[]}`}), nil)
	if !errors.Is(err, image.ErrInvalid) || !strings.Contains(err.Error(), lie.Encoded()) {
		t.Errorf("mismatched blob: %v", err)
	}
	_, err = svc.Load(ctx(t), build(map[string]string{"../../etc/evil": "x"}), nil)
	if !errors.Is(err, image.ErrInvalid) {
		t.Errorf("entry outside the archive: %v", err)
	}
	_, err = svc.Load(ctx(t), strings.NewReader("this is not a tar"), nil)
	if !errors.Is(err, image.ErrInvalid) {
		t.Errorf("not a tar: %v", err)
	}
	if blobs, _ := blobFiles(t, root); len(blobs) != 0 {
		t.Errorf("blobs left by failed loads: %v", blobs)
	}
}

func TestImport(t *testing.T) {
	svc, _ := newStore(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Mode: 0o755, Typeflag: tar.TypeDir})
	tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello\n"))
	tw.Close()
	img, err := svc.Import(ctx(t), &buf, image.ImportOptions{
		Ref:     "imported:v1",
		Changes: []string{`CMD ["/bin/sh"]`, "ENV A=1 B=\"two words\"", "EXPOSE 80", "WORKDIR /srv", "LABEL k=v"},
		Message: "from a test",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config.Config
	if !slices.Equal(c.Cmd, []string{"/bin/sh"}) || !slices.Contains(c.Env, "B=two words") || c.WorkingDir != "/srv" || c.Labels["k"] != "v" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	data, err := os.ReadFile(filepath.Join(mountImage(t, svc, img), "etc", "motd"))
	if string(data) != "hello\n" {
		t.Errorf("motd %q, %v", data, err)
	}
	hist, err := svc.History(ctx(t), "imported:v1")
	if err != nil || len(hist) != 1 || hist[0].Comment != "from a test" || hist[0].ID != img.ID.String() {
		t.Errorf("history %+v, %v", hist, err)
	}
	if _, err := svc.Import(ctx(t), strings.NewReader("x"), image.ImportOptions{Changes: []string{"RUN rm -rf /"}}); !errors.Is(err, image.ErrInvalid) {
		t.Errorf("RUN change: %v", err)
	}
}

func TestPushAndPullBack(t *testing.T) {
	svc, _ := newStore(t)
	src := registry.Start(t)
	dst := registry.Start(t, registry.WithBasicAuth("bob", "pw"))
	src.Push(t, images.Layered(t), "berth-test/layered:latest")
	img, err := svc.Pull(ctx(t), src.Host+"/berth-test/layered", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := dst.Host + "/copies/layered:v2"
	if err := svc.Tag(ctx(t), img.ID.String(), target); err != nil {
		t.Fatal(err)
	}
	log := newProgressLog()
	if err := svc.Push(ctx(t), target, image.PushOptions{Auth: &image.Auth{Username: "bob", Password: "pw"}, Progress: log.fn}); err != nil {
		t.Fatal(err)
	}
	if s := log.statuses(); !contains(s, "Pushed") || !contains(s, "v2: digest: "+img.Target.Digest.String()) {
		t.Errorf("push progress %q", s)
	}
	other, _ := newStore(t)
	back, err := other.Pull(ctx(t), target, image.PullOptions{Auth: &image.Auth{Username: "bob", Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != img.ID || back.Target.Digest != img.Target.Digest {
		t.Errorf("pulled back %s/%s, pushed %s/%s", back.ID, back.Target.Digest, img.ID, img.Target.Digest)
	}
	if err := svc.Push(ctx(t), dst.Host+"/never/tagged:x", image.PushOptions{}); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("push of an absent image: %v", err)
	}
}

func TestRemoveAndPrune(t *testing.T) {
	inUse := map[digest.Digest]bool{}
	svc, root := newStore(t, func(c *image.Config) { c.InUse = func(id digest.Digest) bool { return inUse[id] } })
	reg := registry.Start(t)
	reg.Push(t, images.Busybox(t), "berth-test/busybox:latest")
	img, err := svc.Pull(ctx(t), reg.Host+"/berth-test/busybox", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Tag(ctx(t), img.ID.String(), "other/name:1")
	svc.Tag(ctx(t), img.ID.String(), "other/name:2")

	// By ID with names in several repositories: must be forced.
	if _, err := svc.Remove(ctx(t), img.ID.Encoded()[:12], false, false); !errors.Is(err, image.ErrConflict) {
		t.Errorf("rmi by ID with two repositories: %v, want conflict", err)
	}
	// By name: untags only.
	res, err := svc.Remove(ctx(t), "other/name:1", false, false)
	if err != nil || len(res) != 1 || res[0].Untagged != "other/name:1" {
		t.Errorf("rmi other/name:1 = %+v, %v", res, err)
	}
	// In use: refused without force even for its last name.
	inUse[img.ID] = true
	svc.Remove(ctx(t), reg.Host+"/berth-test/busybox", false, false)
	if _, err := svc.Remove(ctx(t), "other/name:2", false, false); !errors.Is(err, image.ErrConflict) {
		t.Errorf("rmi of an image in use: %v, want conflict", err)
	}
	if _, err := svc.Get(ctx(t), img.ID.String()); err != nil {
		t.Errorf("image in use went away: %v", err)
	}
	inUse[img.ID] = false
	res, err = svc.Remove(ctx(t), "other/name:2", false, false)
	if err != nil || !slices.ContainsFunc(res, func(r image.RemoveResult) bool { return r.Deleted == img.ID.String() }) {
		t.Errorf("rmi of the last name = %+v, %v", res, err)
	}
	if blobs, _ := blobFiles(t, root); len(blobs) != 0 {
		t.Errorf("blobs left after the last image went: %v", blobs)
	}
	if n, _ := svc.DiskUsage(ctx(t)); n != 0 {
		t.Errorf("disk usage %d after removing everything", n)
	}

	// Prune: a dangling image goes, a tagged one stays unless all.
	if _, err := svc.Pull(ctx(t), reg.Host+"/berth-test/busybox", image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, _, err := svc.Prune(ctx(t), false, nil); err != nil || len(res) != 0 {
		t.Errorf("prune of tagged images: %+v, %v", res, err)
	}
	res, reclaimed, err := svc.Prune(ctx(t), true, nil)
	if err != nil || reclaimed <= 0 || !slices.ContainsFunc(res, func(r image.RemoveResult) bool { return r.Deleted == img.ID.String() }) {
		t.Errorf("prune -a: %+v, %d, %v", res, reclaimed, err)
	}
	if _, _, err := svc.Prune(ctx(t), false, map[string][]string{"bogus": {"x"}}); !errors.Is(err, image.ErrInvalid) {
		t.Errorf("prune with a bad filter: %v", err)
	}
}

func TestCommit(t *testing.T) {
	svc, _ := newStore(t)
	f, err := os.Open(images.Archive(t, images.Busybox(t), images.OCIArchive))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := svc.Load(ctx(t), f, nil); err != nil {
		t.Fatal(err)
	}
	parent, err := svc.Get(ctx(t), "berth/busybox:latest")
	if err != nil {
		imgs, _ := svc.List(ctx(t), image.ListOptions{})
		if len(imgs) != 1 {
			t.Fatal(err)
		}
		parent = imgs[0]
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/committed", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("yes"))
	tw.WriteHeader(&tar.Header{Name: "bin/.wh.busybox", Typeflag: tar.TypeReg})
	tw.Close()
	cfg := parent.Config.Config
	cfg.Cmd = []string{"/bin/probe"}
	img, err := svc.Commit(ctx(t), image.CommitOptions{Parent: parent.ID, Layer: &buf, Config: cfg, Author: "me", Comment: "a test", CreatedBy: "/bin/sh", Ref: "committed:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != len(parent.Layers)+1 || img.Layers[0].ChainID != parent.Layers[0].ChainID {
		t.Errorf("layers %+v on parent %+v", img.Layers, parent.Layers)
	}
	if !slices.Equal(img.Config.Config.Cmd, []string{"/bin/probe"}) || img.Config.Author != "me" {
		t.Errorf("config %+v", img.Config)
	}
	root := mountImage(t, svc, img)
	if data, err := os.ReadFile(filepath.Join(root, "etc", "committed")); string(data) != "yes" {
		t.Errorf("committed file: %q %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "bin", "busybox")); !os.IsNotExist(err) {
		t.Errorf("whited-out file still there: %v", err)
	}
	hist, _ := svc.History(ctx(t), "committed:v1")
	if len(hist) == 0 || hist[0].Comment != "a test" || hist[0].CreatedBy != "/bin/sh" {
		t.Errorf("history %+v", hist)
	}
}
