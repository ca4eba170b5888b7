package engine_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
)

// docker commit: the container's changes become a layer of a new image,
// whose config takes the --change instructions; a container of the new
// image sees the changes.
func TestCommit(t *testing.T) {
	v := newEnv(t)
	id := v.create("", sh("echo committed > /etc/marker; rm /etc/group"), nil)
	v.start(id)
	if code := v.wait(id, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	imgID, err := v.e.Commit(ctx(t), id, engine.CommitOptions{Ref: "snapshot:v1", Author: "tester", Comment: "from a test", Changes: []string{"ENV COMMITTED=yes", `CMD ["cat", "/etc/marker"]`}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := v.images.Get(ctx(t), "snapshot:v1")
	if err != nil || img.ID.String() != imgID {
		t.Fatalf("committed image %v, %v (id %s)", img, err, imgID)
	}
	if !slices.Contains(img.Config.Config.Env, "COMMITTED=yes") || !slices.Equal(img.Config.Config.Cmd, []string{"cat", "/etc/marker"}) || img.Config.Author != "tester" {
		t.Errorf("config %+v", img.Config)
	}
	// The new image's merged view has the change and the deletion.
	key := "commit-view-" + id[:8]
	mounts, err := v.images.Snapshotter().View(ctx(t), key, img.Layers[len(img.Layers)-1].ChainID.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.images.Snapshotter().Remove(ctx(t), key)
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	defer snapshot.Unmount(target)
	if data, err := os.ReadFile(filepath.Join(target, "etc", "marker")); string(data) != "committed\n" {
		t.Errorf("/etc/marker in the image: %q %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(target, "etc", "group")); !os.IsNotExist(err) {
		t.Errorf("/etc/group was deleted in the container but is in the image: %v", err)
	}
	// A container of the committed image runs its new command.
	id2 := v.create("", &container.Config{Image: "snapshot:v1"}, nil)
	v.start(id2)
	if code := v.wait(id2, container.WaitConditionNotRunning); code != 0 {
		t.Errorf("container of the committed image exited %d", code)
	}
}
