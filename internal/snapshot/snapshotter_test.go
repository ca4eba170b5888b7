package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file need no root: they never mount and write only
// plain files. Each runs against both drivers.
var kinds = []string{KindOverlay, KindCopy}

func forKinds(t *testing.T, fn func(t *testing.T, s *snapshotter)) {
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) { fn(t, newTest(t, k)) })
	}
}

func TestLayersCommitInOrder(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		base, err := s.Extract(ctx, "x1", "")
		noErr(t, err)
		write(t, filepath.Join(base, "a"), "1", 0o644)
		if !s.Caps().ParallelExtract {
			// copy: the child needs its parent committed first.
			if _, err := s.Extract(ctx, "x2", "L1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("copy Extract over an uncommitted parent: %v, want ErrNotFound", err)
			}
			noErr(t, s.Commit(ctx, "L1", "x1", nil))
		}
		dir2, err := s.Extract(ctx, "x2", "L1")
		noErr(t, err)
		if s.Caps().ParallelExtract {
			if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
				t.Errorf("overlay extraction dir holds %d entries, want none", len(entries))
			}
			// Committing out of order is refused, and then works in order.
			if err := s.Commit(ctx, "L2", "x2", nil); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "L1") {
				t.Fatalf("commit before the parent: %v, want ErrNotFound naming L1", err)
			}
			noErr(t, s.Commit(ctx, "L1", "x1", nil))
		} else if b, err := os.ReadFile(filepath.Join(dir2, "a")); err != nil || string(b) != "1" {
			t.Fatalf("copy extraction lacks its parent's file: %q, %v", b, err)
		}
		write(t, filepath.Join(dir2, "b"), "2", 0o644)
		noErr(t, s.Commit(ctx, "L2", "x2", map[string]string{"k": "v"}))

		info, err := s.Stat(ctx, "L2")
		noErr(t, err)
		if info.Kind != Committed || info.Parent != "L1" || info.Labels["k"] != "v" || info.Labels[LabelExtraction] != "" {
			t.Errorf("Stat(L2) = %+v", info)
		}
		if _, err := s.Stat(ctx, "x2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat of the committed key: %v, want ErrNotFound", err)
		}
		// The committed layer's directory is where it was extracted.
		if b, err := os.ReadFile(filepath.Join(dir2, "b")); err != nil || string(b) != "2" {
			t.Errorf("committed layer lost its file: %q, %v", b, err)
		}
	})
}

func TestWalkFindsUncommittedExtractions(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		s.clock = func() time.Time { return now }
		_, err := s.Extract(ctx, "x1", "")
		noErr(t, err)
		noErr(t, s.Commit(ctx, "L1", "x1", nil))
		_, err = s.Extract(ctx, "crashed", "L1")
		noErr(t, err)
		_, err = s.Prepare(ctx, "container", "L1", map[string]string{"owner": "c1"})
		noErr(t, err)
		_, err = s.View(ctx, "look", "L1", nil)
		noErr(t, err)

		got := map[string]Info{}
		noErr(t, s.Walk(ctx, func(i Info) error { got[i.Name] = i; return nil }))
		if len(got) != 4 {
			t.Fatalf("Walk found %v, want 4 snapshots", got)
		}
		if i := got["crashed"]; i.Kind != Active || i.Labels[LabelExtraction] != "true" || i.Parent != "L1" || !i.Created.Equal(now) {
			t.Errorf("the uncommitted extraction: %+v", i)
		}
		if i := got["container"]; i.Kind != Active || i.Labels[LabelExtraction] != "" || i.Labels["owner"] != "c1" {
			t.Errorf("the container snapshot: %+v", i)
		}
		if got["look"].Kind != View || got["L1"].Kind != Committed {
			t.Errorf("kinds: look %s, L1 %s", got["look"].Kind, got["L1"].Kind)
		}
		// GC removes the crashed extraction by what Walk told it.
		noErr(t, s.Remove(ctx, "crashed"))
	})
}

func TestRemoveRefusesParents(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		dir, err := s.Extract(ctx, "x1", "")
		noErr(t, err)
		noErr(t, s.Commit(ctx, "L1", "x1", nil))
		_, err = s.Prepare(ctx, "c", "L1", nil)
		noErr(t, err)
		if err := s.Remove(ctx, "L1"); !errors.Is(err, ErrHasChildren) || !strings.Contains(err.Error(), `"c"`) {
			t.Fatalf("Remove of a parent: %v, want ErrHasChildren naming c", err)
		}
		noErr(t, s.Remove(ctx, "c"))
		noErr(t, s.Remove(ctx, "L1"))
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the removed layer's directory remains: %v", err)
		}
		if err := s.Remove(ctx, "L1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Remove: %v, want ErrNotFound", err)
		}
		if entries, _ := os.ReadDir(s.dirs); len(entries) != 0 {
			t.Errorf("snapshot directories remain: %v", entries)
		}
	})
}

func TestRemoveDoesNotFollowSymlinks(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		outside := t.TempDir()
		write(t, filepath.Join(outside, "precious"), "keep", 0o644)
		dir, err := s.Extract(ctx, "x", "")
		noErr(t, err)
		noErr(t, os.Symlink(outside, filepath.Join(dir, "escape")))
		noErr(t, os.Symlink(filepath.Join(outside, "precious"), filepath.Join(dir, "file")))
		noErr(t, s.Remove(ctx, "x"))
		if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "keep" {
			t.Fatalf("Remove reached outside the snapshot: %q, %v", b, err)
		}
	})
}

func TestConcurrentCommitOfOneName(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		const n = 6
		for i := range n {
			dir, err := s.Extract(ctx, fmt.Sprint("x", i), "")
			noErr(t, err)
			write(t, filepath.Join(dir, "f"), "same layer", 0o644)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.Commit(ctx, "sha256:chain", fmt.Sprint("x", i), nil) })
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrAlreadyExists):
				// The loser removes its extraction, as a pull does.
				noErr(t, s.Remove(ctx, fmt.Sprint("x", i)))
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d commits of one name succeeded, want 1", won)
		}
		var names []string
		noErr(t, s.Walk(ctx, func(i Info) error { names = append(names, i.Name); return nil }))
		if len(names) != 1 || names[0] != "sha256:chain" {
			t.Errorf("snapshots after the race: %v", names)
		}
		if entries, _ := os.ReadDir(s.dirs); len(entries) != 1 {
			t.Errorf("%d snapshot directories, want 1", len(entries))
		}
	})
}

func TestInputValidation(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		for _, key := range []string{"", "a b", "a\nb", "tab\t", strings.Repeat("k", 2000), "\xff"} {
			if _, err := s.Extract(ctx, key, ""); !errors.Is(err, ErrInvalid) {
				t.Errorf("Extract(%.20q): %v, want ErrInvalid", key, err)
			}
		}
		if _, err := s.Prepare(ctx, "ok", "", map[string]string{"": "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty label key: %v", err)
		}
		if _, err := s.Prepare(ctx, "ok", "", map[string]string{"k": strings.Repeat("v", 5000)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("huge label: %v", err)
		}
		// Keys that look like paths are just keys.
		dir, err := s.Extract(ctx, "../../../etc", "")
		noErr(t, err)
		if !strings.HasPrefix(dir, s.dirs+"/") || strings.Contains(dir, "etc") {
			t.Errorf("directory %s of key ../../../etc", dir)
		}
		if _, err := s.Extract(ctx, "../../../etc", ""); !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("Extract of an existing key: %v, want ErrAlreadyExists", err)
		}
		// Wrong states.
		noErr(t, s.Commit(ctx, "L", "../../../etc", nil))
		if err := s.Commit(ctx, "L2", "L", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Commit of a committed snapshot: %v, want ErrInvalid", err)
		}
		if _, err := s.Mounts(ctx, "L"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Mounts of a committed snapshot: %v, want ErrInvalid", err)
		}
		_, err = s.View(ctx, "v", "L", nil)
		noErr(t, err)
		if err := s.Commit(ctx, "L3", "v", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Commit of a view: %v, want ErrInvalid", err)
		}
		if _, err := s.Prepare(ctx, "c", "v", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Prepare over a view: %v, want ErrInvalid", err)
		}
		if _, err := s.Prepare(ctx, "c", "nope", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Prepare over a missing parent: %v, want ErrNotFound", err)
		}
		if _, err := s.Extract(ctx, "x", "v"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Extract over a view: %v, want ErrInvalid", err)
		}
	})
}

func TestMountsShape(t *testing.T) {
	s := newTest(t, KindOverlay)
	var layers []string
	parent := ""
	for i := range 3 {
		dir, err := s.Extract(ctx, fmt.Sprint("x", i), parent)
		noErr(t, err)
		name := fmt.Sprint("L", i)
		noErr(t, s.Commit(ctx, name, fmt.Sprint("x", i), nil))
		layers = append([]string{dir}, layers...) // top first
		parent = name
	}
	m, err := s.Prepare(ctx, "c", "L2", nil)
	noErr(t, err)
	if len(m) != 1 || m[0].Type != "overlay" {
		t.Fatalf("Prepare mounts %+v, want one overlay", m)
	}
	opts := strings.Join(m[0].Options, ",")
	if !strings.Contains(opts, "lowerdir="+strings.Join(layers, ":")+",") {
		t.Errorf("options %s, want lowerdir %s (top first)", opts, strings.Join(layers, ":"))
	}
	if !strings.Contains(opts, "upperdir=") || !strings.Contains(opts, "workdir=") {
		t.Errorf("options %s lack upperdir or workdir", opts)
	}
	again, err := s.Mounts(ctx, "c")
	noErr(t, err)
	if fmt.Sprint(again) != fmt.Sprint(m) {
		t.Errorf("Mounts %+v differ from Prepare's %+v", again, m)
	}
	spec := m[0].Spec("/")
	if spec.Destination != "/" || spec.Type != "overlay" || len(spec.Options) != len(m[0].Options) {
		t.Errorf("Spec = %+v", spec)
	}

	m, err = s.View(ctx, "v1", "L0", nil)
	noErr(t, err)
	if len(m) != 1 || m[0].Type != "bind" || m[0].Source != layers[2] || !strings.Contains(strings.Join(m[0].Options, ","), "ro") {
		t.Errorf("View of one layer: %+v, want a read-only bind of %s", m, layers[2])
	}
	m, err = s.View(ctx, "v3", "L2", nil)
	noErr(t, err)
	if len(m) != 1 || m[0].Type != "overlay" || strings.Contains(strings.Join(m[0].Options, ","), "upperdir") {
		t.Errorf("View of three layers: %+v, want an overlay without upper", m)
	}
	m, err = s.Prepare(ctx, "scratch", "", nil)
	noErr(t, err)
	if len(m) != 1 || m[0].Type != "bind" || !strings.Contains(strings.Join(m[0].Options, ","), "rw") {
		t.Errorf("parentless Prepare: %+v, want a writable bind", m)
	}
}

func TestUsage(t *testing.T) {
	forKinds(t, func(t *testing.T, s *snapshotter) {
		dir, err := s.Extract(ctx, "x", "")
		noErr(t, err)
		write(t, filepath.Join(dir, "a"), strings.Repeat("a", 1000), 0o644)
		write(t, filepath.Join(dir, "sub/b"), strings.Repeat("b", 2500), 0o644)
		noErr(t, os.Link(filepath.Join(dir, "sub/b"), filepath.Join(dir, "hardlink")))
		noErr(t, os.Symlink("a", filepath.Join(dir, "link"))) // st_size 1
		u, err := s.Usage(ctx, "x")
		noErr(t, err)
		// Inodes: the root, a, sub, b (twice linked), link.
		if want := (Usage{Size: 1000 + 2500 + 1, Inodes: 5}); u != want {
			t.Errorf("Usage = %+v, want %+v", u, want)
		}
		if _, err := s.Usage(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Usage of a missing snapshot: %v", err)
		}
	})
}

func TestReopen(t *testing.T) {
	root := fastDir(t)
	s, err := newSnapshotter(root, KindCopy, noProbe)
	noErr(t, err)
	_, err = s.Extract(ctx, "x", "")
	noErr(t, err)
	noErr(t, s.Commit(ctx, "L", "x", nil))
	// The database is the root's lock: a second snapshotter on it waits a
	// second and gives up.
	if _, err := newSnapshotter(root, "", noProbe); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second snapshotter on one root: %v, want in use", err)
	}
	noErr(t, s.Close())

	// An orphaned directory (a crash between a record's removal and its
	// directory's) goes on the next open.
	orphan := filepath.Join(root, "snapshots", "999")
	noErr(t, os.MkdirAll(filepath.Join(orphan, "fs"), 0o700))

	if _, err := newSnapshotter(root, KindOverlay, noProbe); !errors.Is(err, ErrInvalid) {
		t.Errorf("opening a copy root as overlay: %v, want ErrInvalid", err)
	}
	s2, err := newSnapshotter(root, "", func(string) error { t.Error("probed a root whose kind is known"); return nil })
	if err == nil {
		defer s2.Close()
	}
	noErr(t, err)
	if s2.Caps().OverlayWhiteouts {
		t.Error("the copy root reopened as overlay")
	}
	if info, err := s2.Stat(ctx, "L"); err != nil || info.Kind != Committed {
		t.Errorf("Stat after reopen: %+v, %v", info, err)
	}
	if _, err := os.Lstat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned directory survived the reopen: %v", err)
	}
}

func TestNewPicksCopyWhenOverlayFails(t *testing.T) {
	root := fastDir(t)
	s, err := newSnapshotter(root, "", func(string) error { return errors.New("no overlayfs") })
	noErr(t, err)
	defer s.Close()
	if s.Caps() != (Caps{}) {
		t.Errorf("Caps = %+v, want copy's", s.Caps())
	}
	if _, err := newSnapshotter(fastDir(t), KindOverlay, func(string) error { return errors.New("no overlayfs") }); err == nil || !strings.Contains(err.Error(), "no overlayfs") {
		t.Errorf("explicit overlay where it fails: %v", err)
	}
	if _, err := New(fastDir(t), "zfs"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestRelativeOverlayOptions(t *testing.T) {
	base, opts, layers, err := relativeOverlayOptions([]string{
		"lowerdir=/r/snapshots/3/fs:/r/snapshots/2/fs:/r/snapshots/1/fs",
		"upperdir=/r/snapshots/4/fs", "workdir=/r/snapshots/4/work", "index=off",
	})
	noErr(t, err)
	if base != "/r/snapshots" || layers != 3 || opts != "lowerdir=3/fs:2/fs:1/fs,upperdir=4/fs,workdir=4/work,index=off" {
		t.Errorf("got %q %q %d", base, opts, layers)
	}
	base, opts, _, err = relativeOverlayOptions([]string{"lowerdir=/a/x:/b/y"})
	noErr(t, err)
	if base != "/" || opts != "lowerdir=a/x:b/y" {
		t.Errorf("got %q %q", base, opts)
	}
	if _, _, _, err := relativeOverlayOptions([]string{"lowerdir=rel:/abs"}); err == nil {
		t.Error("a relative lowerdir was accepted")
	}
}

func TestMountAllRefusesOptionsOverAPage(t *testing.T) {
	// Refused before any syscall: no root needed.
	huge := Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "x-" + strings.Repeat("y", 5000)}}
	if err := MountAll([]Mount{huge}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "bytes of options") {
		t.Fatalf("MountAll with 5 KB of tmpfs options: %v", err)
	}
}
