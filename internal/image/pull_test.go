package image_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/test/images"
	"github.com/berth-project/berth/test/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPullPlainHTTP(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	manifest := reg.Push(t, images.Busybox(t), "berth-test/busybox:latest")
	ref := reg.Host + "/berth-test/busybox"

	log := newProgressLog()
	img, err := svc.Pull(ctx(t), ref, image.PullOptions{Progress: log.fn})
	if err != nil {
		t.Fatal(err)
	}
	want := reg.Host + "/berth-test/busybox:latest"
	if len(img.Names) != 1 || img.Names[0] != want {
		t.Errorf("names %v, want [%s]", img.Names, want)
	}
	if wantDigest := reg.Host + "/berth-test/busybox@" + manifest.Digest.String(); len(img.RepoDigests) != 1 || img.RepoDigests[0] != wantDigest {
		t.Errorf("repo digests %v, want [%s]", img.RepoDigests, wantDigest)
	}
	if img.Target.Digest != manifest.Digest {
		t.Errorf("target %s, want the pushed manifest %s", img.Target.Digest, manifest.Digest)
	}
	if len(img.Layers) != 1 || img.Size <= 0 {
		t.Errorf("layers %d, size %d", len(img.Layers), img.Size)
	}
	statuses := log.statuses()
	for _, s := range []string{"Pulling from berth-test/busybox", "Pulling fs layer", "Download complete", "Pull complete", "Digest: " + manifest.Digest.String(), "Status: Downloaded newer image for " + ref + ":latest"} {
		if !contains(statuses, s) {
			t.Errorf("progress lacks %q: %q", s, statuses)
		}
	}

	root := mountImage(t, svc, img)
	if fi, err := os.Stat(filepath.Join(root, "bin", "busybox")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("unpacked /bin/busybox: %v %v", fi, err)
	}

	// Every way of naming it finds it.
	for _, name := range []string{ref, ref + ":latest", img.RepoDigests[0], img.ID.String(), img.ID.Encoded(), img.ID.Encoded()[:12]} {
		got, err := svc.Get(ctx(t), name)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", name, got, err)
		}
	}

	// A second pull changes nothing and says so.
	log = newProgressLog()
	if _, err := svc.Pull(ctx(t), ref, image.PullOptions{Progress: log.fn}); err != nil {
		t.Fatal(err)
	}
	if s := log.statuses(); !contains(s, "Already exists") || !contains(s, "Status: Image is up to date for "+ref+":latest") {
		t.Errorf("second pull: %q", s)
	}
}

func TestPullLayeredMergedView(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	reg.Push(t, images.Layered(t), "berth-test/layered:latest")
	img, err := svc.Pull(ctx(t), reg.Host+"/berth-test/layered:latest", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 6 {
		t.Fatalf("%d layers, want 6", len(img.Layers))
	}
	if err := images.LayeredExpect().Verify(mountImage(t, svc, img)); err != nil {
		t.Errorf("merged view of the pulled image:\n%v", err)
	}
	if img.Config.Config.Healthcheck == nil || img.Config.Config.User != "berth" || img.Config.Config.WorkingDir != "/app" {
		t.Errorf("config not kept: %+v", img.Config.Config)
	}
}

func TestPullAuth(t *testing.T) {
	for name, opt := range map[string]registry.Option{
		"basic": registry.WithBasicAuth("alice", "s3cret"),
		"token": registry.WithTokenAuth("alice", "s3cret"),
	} {
		t.Run(name, func(t *testing.T) {
			svc, _ := newStore(t, func(c *image.Config) {})
			t.Setenv("DOCKER_CONFIG", t.TempDir()) // no stray credentials
			reg := registry.Start(t, opt)
			reg.Push(t, images.Busybox(t), "private/busybox:latest")
			ref := reg.Host + "/private/busybox:latest"

			_, err := svc.Pull(ctx(t), ref, image.PullOptions{Auth: &image.Auth{Username: "alice", Password: "wrong"}})
			if !errors.Is(err, image.ErrUnauthorized) {
				t.Errorf("wrong password: %v, want unauthorized", err)
			}
			_, err = svc.Pull(ctx(t), ref, image.PullOptions{})
			if !errors.Is(err, image.ErrUnauthorized) && !errors.Is(err, image.ErrNotFound) {
				t.Errorf("anonymous: %v, want unauthorized or not found (docker's 'pull access denied')", err)
			}
			if _, err := svc.Pull(ctx(t), ref, image.PullOptions{Auth: &image.Auth{Username: "alice", Password: "s3cret"}}); err != nil {
				t.Errorf("right password: %v", err)
			}
		})
	}
}

// A registry that serves bytes that do not match the digest, or fewer of
// them, gets a clear error and leaves nothing of the layer in the store.
func TestPullBadBlob(t *testing.T) {
	for _, damage := range []string{"corrupt", "truncate"} {
		t.Run(damage, func(t *testing.T) {
			svc, root := newStore(t)
			reg := registry.Start(t)
			reg.Push(t, images.Busybox(t), "berth-test/busybox:latest")
			img := readLayout(t, images.Busybox(t))
			layer := img.Layers[0]
			data := registryBlob(reg, layer.Digest)
			switch damage {
			case "corrupt":
				f, err := os.OpenFile(data, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt([]byte("not the layer you are looking for"), layer.Size/2); err != nil {
					t.Fatal(err)
				}
				f.Close()
			case "truncate":
				if err := os.Truncate(data, layer.Size/2); err != nil {
					t.Fatal(err)
				}
			}
			_, err := svc.Pull(ctx(t), reg.Host+"/berth-test/busybox:latest", image.PullOptions{})
			if err == nil {
				t.Fatal("pull of a damaged layer succeeded")
			}
			if !strings.Contains(err.Error(), layer.Digest.String()) {
				t.Errorf("error does not name the layer %s: %v", layer.Digest, err)
			}
			t.Logf("error: %v", err)
			blobs, partials := blobFiles(t, root)
			for _, b := range blobs {
				if strings.Contains(b, layer.Digest.Encoded()) {
					t.Errorf("the damaged layer was committed: %s", b)
				}
			}
			if damage == "corrupt" && len(partials) > 0 {
				t.Errorf("partial downloads left: %v", partials)
			}
			if imgs, _ := svc.List(ctx(t), image.ListOptions{}); len(imgs) != 0 {
				t.Errorf("images after a failed pull: %d", len(imgs))
			}
			var snaps []string
			svc.Snapshotter().Walk(context.Background(), func(i snapshotInfo) error {
				snaps = append(snaps, i.Name)
				return nil
			})
			if len(snaps) != 0 {
				t.Errorf("snapshots after a failed pull: %v", snaps)
			}
		})
	}
}

func TestPullPlatforms(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	reg.Push(t, images.MultiPlatform(t), "berth-test/multi:latest")
	ref := reg.Host + "/berth-test/multi:latest"

	arm, _ := image.ParsePlatform("linux/arm64")
	img, err := svc.Pull(ctx(t), ref, image.PullOptions{Platform: &arm})
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Architecture != "arm64" {
		t.Errorf("pulled %s, want arm64", img.Config.Architecture)
	}
	content, err := os.ReadFile(filepath.Join(mountImage(t, svc, img), "platform"))
	if err != nil || !strings.Contains(string(content), "arm64") {
		t.Errorf("/platform = %q, %v", content, err)
	}
	s390x := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	_, err = svc.Pull(ctx(t), ref, image.PullOptions{Platform: &s390x})
	if !errors.Is(err, image.ErrNoPlatform) || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("s390x: %v, want no matching manifest listing what there is", err)
	}
}

func TestPullErrors(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	for _, c := range []struct {
		ref  string
		want error
	}{
		{reg.Host + "/no/such-image:latest", image.ErrNotFound},
		{"Not A Reference", image.ErrInvalid},
		{"127.0.0.1:1/nothing/listens:here", image.ErrUnavailable},
	} {
		_, err := svc.Pull(ctx(t), c.ref, image.PullOptions{})
		if !errors.Is(err, c.want) {
			t.Errorf("pull %q: %v, want %v", c.ref, err, c.want)
		}
		t.Logf("pull %q: %v", c.ref, err)
	}
}

func TestConcurrentPulls(t *testing.T) {
	svc, _ := newStore(t)
	reg := registry.Start(t)
	reg.Push(t, images.Layered(t), "berth-test/layered:latest")
	reg.Push(t, images.Busybox(t), "berth-test/busybox:latest")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "/berth-test/layered:latest"
			if i%2 == 1 {
				name = "/berth-test/busybox:latest"
			}
			_, err := svc.Pull(ctx(t), reg.Host+name, image.PullOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	img, err := svc.Get(ctx(t), reg.Host+"/berth-test/layered")
	if err != nil {
		t.Fatal(err)
	}
	if err := images.LayeredExpect().Verify(mountImage(t, svc, img)); err != nil {
		t.Error(err)
	}
	// busybox's layer is layered's first: one snapshot serves both.
	var committed int
	svc.Snapshotter().Walk(context.Background(), func(i snapshotInfo) error {
		if i.Kind == snapshot.Committed {
			committed++
		}
		return nil
	})
	if committed != 6 {
		t.Errorf("%d snapshots, want 6 (busybox's layer shared)", committed)
	}
}

// Where overlayfs is missing, the copy snapshotter gives the same view:
// layers extracted in order onto copies of their parents, whiteouts
// applied.
func TestPullCopySnapshotter(t *testing.T) {
	svc, _ := newStore(t, func(c *image.Config) { c.Snapshotter = "copy" })
	if svc.Driver() != "copy" {
		t.Fatalf("driver %q, want copy", svc.Driver())
	}
	reg := registry.Start(t)
	reg.Push(t, images.Layered(t), "berth-test/layered:latest")
	img, err := svc.Pull(ctx(t), reg.Host+"/berth-test/layered:latest", image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := images.LayeredExpect().Verify(mountImage(t, svc, img)); err != nil {
		t.Errorf("merged view with the copy snapshotter:\n%v", err)
	}
}
