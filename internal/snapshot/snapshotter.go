package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A driver is what tells overlay from copy: how a new snapshot's directory
// is filled and how a snapshot is mounted. Everything else (metadata,
// validation, removal) is shared.
type driver interface {
	name() string
	caps() Caps
	// populate fills a new snapshot whose directory dir holds an empty fs/.
	// parentFS is the committed parent's fs/ ("" for none, or for an
	// overlay extraction, which never needs it).
	populate(ctx context.Context, dir, parentFS string, kind Kind, extraction bool) error
	// mounts returns the mounts of an Active snapshot or View whose own
	// directory is dir, over lowers (the parents' fs/ dirs, top first).
	mounts(kind Kind, dir string, lowers []string) []Mount
}

// snapshotter implements Snapshotter over a driver.
type snapshotter struct {
	root  string
	dirs  string   // root/snapshots
	fsys  *os.Root // dirs, for removals that never leave it
	db    *bolt.DB
	drv   driver
	clock func() time.Time
}

func (s *snapshotter) dir(id uint64) string { return filepath.Join(s.dirs, strconv.FormatUint(id, 10)) }

func fsDir(dir string) string   { return filepath.Join(dir, "fs") }
func workDir(dir string) string { return filepath.Join(dir, "work") }

func (s *snapshotter) Caps() Caps { return s.drv.caps() }

func (s *snapshotter) Extract(ctx context.Context, key, parent string) (string, error) {
	dir, _, err := s.create(ctx, Active, key, parent, map[string]string{LabelExtraction: "true"}, true)
	if err != nil {
		return "", err
	}
	return fsDir(dir), nil
}

func (s *snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	dir, lowers, err := s.create(ctx, Active, key, parent, labels, false)
	if err != nil {
		return nil, err
	}
	return s.drv.mounts(Active, dir, lowers), nil
}

func (s *snapshotter) View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error) {
	dir, lowers, err := s.create(ctx, View, key, parent, labels, false)
	if err != nil {
		return nil, err
	}
	return s.drv.mounts(View, dir, lowers), nil
}

// create records the snapshot key, then makes and fills its directory. The
// record comes first so that the parent cannot be removed meanwhile; if
// making the directory fails the record goes again, and a crash in between
// leaves a record without a directory, which Remove handles.
func (s *snapshotter) create(ctx context.Context, kind Kind, key, parent string, labels map[string]string, extraction bool) (string, []string, error) {
	if err := validKey("key", key); err != nil {
		return "", nil, err
	}
	if parent != "" {
		if err := validKey("parent", parent); err != nil {
			return "", nil, err
		}
	}
	if err := validLabels(labels); err != nil {
		return "", nil, err
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	independent := extraction && s.drv.caps().ParallelExtract
	var rec record
	var lowers []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("%w: %q", ErrAlreadyExists, key)
		}
		switch {
		case parent == "":
		case independent:
			// The parent may still be extracting; Commit checks it.
			if p, err := getRecord(tx, parent); err == nil && p.Kind != Committed {
				return fmt.Errorf("%w: parent %q is %s, not committed", ErrInvalid, parent, p.Kind)
			}
		default:
			recs, err := chain(tx, parent)
			if err != nil {
				return err
			}
			for _, r := range recs {
				lowers = append(lowers, fsDir(s.dir(r.ID)))
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		rec = record{ID: id, Kind: kind, Parent: parent, Created: s.clock().UTC(), Labels: maps.Clone(labels)}
		return putRecord(tx, key, rec)
	})
	if err != nil {
		return "", nil, fmt.Errorf("%s snapshot %q: %w", kind, key, err)
	}
	dir := s.dir(rec.ID)
	err = os.Mkdir(dir, 0o700)
	if err == nil {
		// The layer's root; a tar's "./" entry may change its mode.
		err = os.Mkdir(fsDir(dir), 0o755)
	}
	if err == nil {
		parentFS := ""
		if len(lowers) > 0 {
			parentFS = lowers[0]
		}
		err = s.drv.populate(ctx, dir, parentFS, kind, extraction)
	}
	if err != nil {
		s.drop(key, rec.ID)
		return "", nil, fmt.Errorf("%s snapshot %q: %w", kind, key, err)
	}
	return dir, lowers, nil
}

// drop undoes a create that failed half-way.
func (s *snapshotter) drop(key string, id uint64) {
	s.db.Update(func(tx *bolt.Tx) error {
		if r, err := getRecord(tx, key); err == nil && r.ID == id {
			return tx.Bucket(bucketSnapshots).Delete([]byte(key))
		}
		return nil
	})
	s.fsys.RemoveAll(strconv.FormatUint(id, 10))
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var rec record
	var lowers []string
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if rec, err = getRecord(tx, key); err != nil {
			return err
		}
		if rec.Kind == Committed {
			return fmt.Errorf("%w: %q is committed; mount a View of it", ErrInvalid, key)
		}
		if _, ok := rec.Labels[LabelExtraction]; ok && s.drv.caps().ParallelExtract {
			// An overlay extraction is its own diff, whatever its parent.
			return nil
		}
		recs, err := chain(tx, rec.Parent)
		for _, r := range recs {
			lowers = append(lowers, fsDir(s.dir(r.ID)))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts of %q: %w", key, err)
	}
	return s.drv.mounts(rec.Kind, s.dir(rec.ID), lowers), nil
}

func (s *snapshotter) Commit(ctx context.Context, name, key string, labels map[string]string) error {
	if err := validKey("name", name); err != nil {
		return err
	}
	if err := validLabels(labels); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if rec.Kind != Active {
			return fmt.Errorf("%w: %q is %s, not active", ErrInvalid, key, rec.Kind)
		}
		if tx.Bucket(bucketSnapshots).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %q", ErrAlreadyExists, name)
		}
		if rec.Parent != "" {
			// Layers are committed in order: an extraction made before its
			// parent existed waits for it here.
			if _, err := committedParent(tx, rec.Parent); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketSnapshots).Delete([]byte(key)); err != nil {
			return err
		}
		rec.Kind = Committed
		rec.Created = s.clock().UTC()
		rec.Labels = maps.Clone(labels)
		return putRecord(tx, name, rec)
	})
	if err != nil {
		return fmt.Errorf("commit %q as %q: %w", key, name, err)
	}
	return nil
}

func (s *snapshotter) Remove(ctx context.Context, key string) error {
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		kids, err := children(tx, key, 3)
		if err != nil {
			return err
		}
		if len(kids) > 0 {
			return fmt.Errorf("%w: %q is the parent of %q", ErrHasChildren, key, kids)
		}
		id = rec.ID
		return tx.Bucket(bucketSnapshots).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	// Once the record is gone the directory is an orphan: if this removal
	// fails, the next New removes it.
	if err := s.fsys.RemoveAll(strconv.FormatUint(id, 10)); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return nil
}

func (s *snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := getRecord(tx, key)
		info = rec.info(key)
		return err
	})
	if err != nil {
		return Info{}, fmt.Errorf("stat snapshot: %w", err)
	}
	return info, nil
}

// Walk reads every record first and calls fn after the transaction: fn may
// well Remove, and a write transaction must not wait for a read one held by
// the same goroutine.
func (s *snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, _ []byte) error {
			rec, err := getRecord(tx, string(k))
			infos = append(infos, rec.info(string(k)))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	var rec record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = getRecord(tx, key)
		return err
	})
	if err != nil {
		return Usage{}, fmt.Errorf("usage of snapshot: %w", err)
	}
	u, err := diskUsage(ctx, fsDir(s.dir(rec.ID)))
	if errors.Is(err, os.ErrNotExist) {
		return Usage{}, fmt.Errorf("usage of snapshot %q: its directory is missing: %w", key, err)
	}
	return u, err
}

func (s *snapshotter) Close() error {
	return errors.Join(s.db.Close(), s.fsys.Close())
}
