package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kinds of snapshotter New makes.
const (
	KindOverlay = "overlay"
	KindCopy    = "copy"
)

// New opens the snapshotter rooted at root, creating it if needed. kind is
// KindOverlay, KindCopy, or "" for overlay where this kernel mounts
// overlayfs with root's file system underneath (found out once, by a real
// mount in root/probe) and copy elsewhere.
//
// A root keeps the kind it was made with: the two keep layers in different
// forms. "" then means that kind, and asking for the other is an error.
func New(root, kind string) (Snapshotter, error) {
	return newSnapshotter(root, kind, probeOverlay)
}

func newSnapshotter(root, kind string, probe func(dir string) error) (Snapshotter, error) {
	if kind != "" && kind != KindOverlay && kind != KindCopy {
		return nil, fmt.Errorf("%w: snapshotter %q: want %q or %q", ErrInvalid, kind, KindOverlay, KindCopy)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	dirs := filepath.Join(root, "snapshots")
	for _, d := range []string{root, dirs} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("snapshotter: %w", err)
		}
	}
	// The database's flock makes the root ours before anything else runs.
	db, err := openDB(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	s, err := setUp(db, root, dirs, kind, probe)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func setUp(db *bolt.DB, root, dirs, kind string, probe func(string) error) (*snapshotter, error) {
	stored, err := storedKind(db)
	if err != nil {
		return nil, err
	}
	switch {
	case stored != "" && kind != "" && kind != stored:
		return nil, fmt.Errorf("%w: %s holds %s snapshots, not %s", ErrInvalid, root, stored, kind)
	case stored != "":
		kind = stored
	}
	if kind == "" || kind == KindOverlay {
		perr := probe(filepath.Join(root, "probe"))
		switch {
		case perr == nil:
			kind = KindOverlay
		case kind == KindOverlay:
			return nil, fmt.Errorf("overlay snapshotter in %s: overlayfs does not work here: %w", root, perr)
		default:
			kind = KindCopy
		}
	}
	var drv driver = copyDriver{}
	if kind == KindOverlay {
		// Overlay options are comma and colon separated lists of paths.
		if strings.ContainsAny(root, ",:\\") {
			return nil, fmt.Errorf("%w: overlay snapshotter root %q contains ',', ':' or '\\'", ErrInvalid, root)
		}
		drv = overlayDriver{}
	}
	if stored == "" {
		if err := storeKind(db, kind); err != nil {
			return nil, err
		}
	}
	fsys, err := os.OpenRoot(dirs)
	if err != nil {
		return nil, err
	}
	s := &snapshotter{root: root, dirs: dirs, fsys: fsys, db: db, drv: drv, clock: time.Now}
	if err := s.removeOrphans(); err != nil {
		fsys.Close()
		return nil, err
	}
	return s, nil
}

// removeOrphans removes the snapshot directories no record names: left by
// a crash between a record's removal and its directory's, or a directory
// made for a record that was never stored.
func (s *snapshotter) removeOrphans() error {
	known := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, _ []byte) error {
			rec, err := getRecord(tx, string(k))
			known[strconv.FormatUint(rec.ID, 10)] = true
			return err
		})
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.dirs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !known[e.Name()] {
			if err := s.fsys.RemoveAll(e.Name()); err != nil {
				return fmt.Errorf("remove orphaned snapshot directory: %w", err)
			}
		}
	}
	return nil
}
