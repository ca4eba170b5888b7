package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Root tests: real overlay and bind mounts, whiteout devices, trusted
// xattrs. Every mount is undone by the test; fastDir fails the test if one
// is left.

// openReal makes a snapshotter of kind with the real kernel probe.
func openReal(t *testing.T, kind string) (*snapshotter, string) {
	t.Helper()
	requireRoot(t)
	root := fastDir(t)
	s, err := New(root, kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*snapshotter), root
}

// buildLayers writes three layers straight into extraction directories, as
// archive.Apply would: with overlay whiteouts for overlay, applied for copy.
// It returns the extraction dir of each layer.
func buildLayers(t *testing.T, s *snapshotter) []string {
	t.Helper()
	overlay := s.Caps().OverlayWhiteouts
	var dirs []string
	layer := func(n int, fill func(dir string)) {
		parent := ""
		if n > 1 {
			parent = fmt.Sprint("L", n-1)
		}
		dir, err := s.Extract(ctx, fmt.Sprint("x", n), parent)
		noErr(t, err)
		fill(dir)
		noErr(t, s.Commit(ctx, fmt.Sprint("L", n), fmt.Sprint("x", n), nil))
		dirs = append(dirs, dir)
	}
	layer(1, func(dir string) {
		write(t, filepath.Join(dir, "a"), "a1", 0o644)
		write(t, filepath.Join(dir, "d/f1"), "f1", 0o644)
		write(t, filepath.Join(dir, "d/f2"), "f2", 0o644)
		write(t, filepath.Join(dir, "g"), "g", 0o644)
		write(t, filepath.Join(dir, "h/x"), "x", 0o644)
		write(t, filepath.Join(dir, "hl1"), "hard", 0o644)
		noErr(t, os.Link(filepath.Join(dir, "hl1"), filepath.Join(dir, "hl2")))
		noErr(t, unix.Mkfifo(filepath.Join(dir, "p"), 0o640))
		noErr(t, os.Chmod(filepath.Join(dir, "p"), 0o640))
	})
	layer(2, func(dir string) {
		write(t, filepath.Join(dir, "a"), "a2", 0o644)
		if overlay {
			noErr(t, unix.Mknod(filepath.Join(dir, "g"), unix.S_IFCHR, 0))
			noErr(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
			noErr(t, unix.Setxattr(filepath.Join(dir, "d"), "trusted.overlay.opaque", []byte("y"), 0))
		} else {
			noErr(t, os.Remove(filepath.Join(dir, "g")))
			noErr(t, os.RemoveAll(filepath.Join(dir, "d")))
			noErr(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
		}
		write(t, filepath.Join(dir, "d/new"), "new", 0o644)
		noErr(t, os.Symlink("a", filepath.Join(dir, "b")))
		write(t, filepath.Join(dir, "h/y"), "y", 0o644)
	})
	layer(3, func(dir string) {
		write(t, filepath.Join(dir, "a"), "a3", 0o600)
		write(t, filepath.Join(dir, "x/deep"), "deep", 0o644)
	})
	return dirs
}

// merged is the tree the three layers make together.
var merged = map[string]string{
	"a":      `file 600 "a3"`,
	"b":      "link a",
	"d":      "dir 755",
	"d/new":  `file 644 "new"`,
	"h":      "dir 755",
	"h/x":    `file 644 "x"`,
	"h/y":    `file 644 "y"`,
	"hl1":    `file 644 "hard"`,
	"hl2":    `file 644 "hard"`,
	"p":      "fifo 640",
	"x":      "dir 755",
	"x/deep": `file 644 "deep"`,
}

func mountAt(t *testing.T, mounts []Mount, target string) {
	t.Helper()
	noErr(t, os.MkdirAll(target, 0o755))
	noErr(t, MountAll(mounts, target))
	t.Cleanup(func() { Unmount(target) })
}

func TestContainerOnLayers(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s, root := openReal(t, kind)
			dirs := buildLayers(t, s)
			mounts, err := s.Prepare(ctx, "ctr", "L3", nil)
			noErr(t, err)
			target := filepath.Join(root, "rootfs")
			mountAt(t, mounts, target)
			diffTrees(t, "container root", tree(t, target), merged)

			write(t, filepath.Join(target, "written"), "w", 0o644)
			noErr(t, os.Remove(filepath.Join(target, "a")))
			noErr(t, Unmount(target))

			// The container's changes are in its own snapshot only.
			own, err := s.Mounts(ctx, "ctr")
			noErr(t, err)
			upper := ownDir(t, s, "ctr")
			got := tree(t, upper)
			if got["written"] != `file 644 "w"` {
				t.Errorf("the container's file is not in its snapshot: %v", got)
			}
			if kind == KindOverlay {
				if got["a"] != "char 0:0" {
					t.Errorf("removing a lower file left %q in the upper, want a whiteout", got["a"])
				}
				if u, err := s.Usage(ctx, "ctr"); err != nil || u != (Usage{Size: 1, Inodes: 3}) {
					t.Errorf("Usage of the container's upper = %+v, %v; want 1 byte in 3 inodes", u, err)
				}
				if len(own) != 1 || own[0].Type != "overlay" {
					t.Errorf("Mounts(ctr) = %+v", own)
				}
			} else {
				if _, ok := got["a"]; ok {
					t.Errorf("the container's removal of a did not happen in its copy")
				}
				// The whole tree: root, b, d, d/new, h, h/x, h/y, hl1=hl2,
				// p, x, x/deep, written; bytes 1+3+1+1+4+4+1.
				if u, err := s.Usage(ctx, "ctr"); err != nil || u != (Usage{Size: 15, Inodes: 12}) {
					t.Errorf("Usage of the container's copy = %+v, %v; want 15 bytes in 12 inodes", u, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dirs[2], "a")); err != nil || string(b) != "a3" {
				t.Errorf("the top layer changed under the container: %q, %v", b, err)
			}
			noErr(t, s.Remove(ctx, "ctr"))
		})
	}
}

// ownDir is the fs directory of a snapshot.
func ownDir(t *testing.T, s *snapshotter, key string) string {
	t.Helper()
	var dir string
	noErr(t, s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		dir = fsDir(s.dir(r.ID))
		return err
	}))
	return dir
}

func TestViews(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s, root := openReal(t, kind)
			buildLayers(t, s)
			for _, v := range []struct {
				parent string
				want   map[string]string
			}{
				{"L3", merged},
				{"L1", map[string]string{
					"a": `file 644 "a1"`, "d": "dir 755", "d/f1": `file 644 "f1"`, "d/f2": `file 644 "f2"`,
					"g": `file 644 "g"`, "h": "dir 755", "h/x": `file 644 "x"`,
					"hl1": `file 644 "hard"`, "hl2": `file 644 "hard"`, "p": "fifo 640",
				}},
			} {
				key := "view-of-" + v.parent
				mounts, err := s.View(ctx, key, v.parent, nil)
				noErr(t, err)
				target := filepath.Join(root, key)
				mountAt(t, mounts, target)
				diffTrees(t, key, tree(t, target), v.want)
				if err := os.WriteFile(filepath.Join(target, "z"), nil, 0o644); !errors.Is(err, unix.EROFS) {
					t.Errorf("%s: writing into a view: %v, want EROFS", key, err)
				}
				if err := os.Remove(filepath.Join(target, "a")); !errors.Is(err, unix.EROFS) {
					t.Errorf("%s: removing from a view: %v, want EROFS", key, err)
				}
				noErr(t, Unmount(target))
				noErr(t, s.Remove(ctx, key))
			}
		})
	}
}

func TestParentlessContainer(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s, root := openReal(t, kind)
			mounts, err := s.Prepare(ctx, "scratch", "", nil)
			noErr(t, err)
			target := filepath.Join(root, "scratch")
			mountAt(t, mounts, target)
			write(t, filepath.Join(target, "f"), "scratch", 0o644)
			noErr(t, Unmount(target))
			if got := tree(t, ownDir(t, s, "scratch")); got["f"] != `file 644 "scratch"` {
				t.Errorf("the write did not land in the snapshot: %v", got)
			}
			noErr(t, s.Remove(ctx, "scratch"))
		})
	}
}

// TestDeepChain mounts 150 layers, whose absolute lowerdir list does not
// fit the page mount(2) takes. The layers are extracted side by side
// before any is committed, as a pull does.
func TestDeepChain(t *testing.T) {
	s, root := openReal(t, KindOverlay)
	const n = 150
	for i := range n {
		parent := ""
		if i > 0 {
			parent = fmt.Sprint("L", i-1)
		}
		dir, err := s.Extract(ctx, fmt.Sprint("x", i), parent)
		noErr(t, err)
		write(t, filepath.Join(dir, fmt.Sprint("f", i)), "", 0o644)
		write(t, filepath.Join(dir, "top"), fmt.Sprint(i), 0o644)
	}
	for i := range n {
		noErr(t, s.Commit(ctx, fmt.Sprint("L", i), fmt.Sprint("x", i), nil))
	}
	want := map[string]string{"top": fmt.Sprintf("file 644 %q", fmt.Sprint(n-1))}
	for i := range n {
		want[fmt.Sprint("f", i)] = `file 644 ""`
	}
	for _, view := range []bool{false, true} {
		key := fmt.Sprint("deep-view-", view)
		var mounts []Mount
		var err error
		if view {
			mounts, err = s.View(ctx, key, fmt.Sprint("L", n-1), nil)
		} else {
			mounts, err = s.Prepare(ctx, key, fmt.Sprint("L", n-1), nil)
		}
		noErr(t, err)
		if l := len(strings.Join(mounts[0].Options, ",")); l < unix.Getpagesize() {
			t.Fatalf("options of %d layers are %d bytes: under a page, the test proves nothing", n, l)
		}
		target := filepath.Join(root, key)
		mountAt(t, mounts, target)
		diffTrees(t, key, tree(t, target), want)
		err = os.WriteFile(filepath.Join(target, "new"), nil, 0o644)
		if view && !errors.Is(err, unix.EROFS) || !view && err != nil {
			t.Errorf("%s: write: %v", key, err)
		}
		noErr(t, Unmount(target))
		noErr(t, s.Remove(ctx, key))
	}
}

func TestMountAllUndoesAndUnmountIsIdempotent(t *testing.T) {
	requireRoot(t)
	root := fastDir(t)
	src, target := filepath.Join(root, "src"), filepath.Join(root, "target")
	noErr(t, os.Mkdir(src, 0o755))
	noErr(t, os.Mkdir(target, 0o755))
	err := MountAll([]Mount{bindMount(src, false), {Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + filepath.Join(root, "missing")}}}, target)
	if err == nil {
		Unmount(target)
		t.Fatal("an overlay of a missing directory mounted")
	}
	if m := mountsUnder(t, root); len(m) != 0 {
		t.Errorf("MountAll left %v after failing", m)
	}
	noErr(t, Unmount(target))
	if err := Unmount(filepath.Join(root, "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unmount of a missing path: %v", err)
	}
}

func TestNewProbesOverlay(t *testing.T) {
	requireRoot(t)
	// tmpfs (fastDir) and this machine's ext4 both carry overlay uppers.
	for _, root := range []string{fastDir(t), t.TempDir()} {
		s, err := New(root, "")
		noErr(t, err)
		if !s.Caps().OverlayWhiteouts || !s.Caps().ParallelExtract {
			t.Errorf("New(%s, \"\") picked copy: Caps %+v", root, s.Caps())
		}
		s.Close()
		if _, err := os.Lstat(filepath.Join(root, "probe")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the probe left %s/probe: %v", root, err)
		}
		if m := mountsUnder(t, root); len(m) != 0 {
			t.Errorf("the probe left mounts %v", m)
		}
	}
}
