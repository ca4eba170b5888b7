package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// The database holds two buckets:
//
//	snapshots: name -> record (JSON); the bucket's sequence numbers directories
//	config:    "kind" -> "overlay" | "copy"
var (
	bucketSnapshots = []byte("snapshots")
	bucketConfig    = []byte("config")
	keyKind         = []byte("kind")
)

// record is a snapshot as stored.
type record struct {
	ID      uint64            `json:"id"` // names the directory snapshots/<id>
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

func (r record) info(name string) Info {
	return Info{Name: name, Parent: r.Parent, Kind: r.Kind, Created: r.Created, Labels: r.Labels}
}

// Limits on caller input: keys, names and labels are stored, never used as
// paths, but must not let a caller bloat the database.
const (
	maxKeyLen   = 1024
	maxLabelLen = 4096 // key and value together, as containerd
	maxLabels   = 64
)

func validKey(what, k string) error {
	if k == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(k) > maxKeyLen {
		return fmt.Errorf("%w: %s of %d bytes is over %d", ErrInvalid, what, len(k), maxKeyLen)
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("%w: %s %q is not UTF-8", ErrInvalid, what, k)
	}
	if i := strings.IndexFunc(k, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }); i >= 0 {
		return fmt.Errorf("%w: %s %q has a space or control character", ErrInvalid, what, k)
	}
	return nil
}

func validLabels(labels map[string]string) error {
	if len(labels) > maxLabels {
		return fmt.Errorf("%w: %d labels, at most %d", ErrInvalid, len(labels), maxLabels)
	}
	for k, v := range labels {
		if k == "" || len(k)+len(v) > maxLabelLen || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: label %.64q: empty, not UTF-8 or over %d bytes", ErrInvalid, k, maxLabelLen)
		}
	}
	return nil
}

func openDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("snapshot metadata %s is in use by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSnapshots, bucketConfig} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshot metadata %s: %w", path, err)
	}
	return db, nil
}

// storedKind is the kind the root was made with, "" for a new root.
func storedKind(db *bolt.DB) (string, error) {
	var kind string
	err := db.View(func(tx *bolt.Tx) error {
		kind = string(tx.Bucket(bucketConfig).Get(keyKind))
		return nil
	})
	return kind, err
}

func storeKind(db *bolt.DB, kind string) error {
	return db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConfig).Put(keyKind, []byte(kind))
	})
}

func getRecord(tx *bolt.Tx, name string) (record, error) {
	raw := tx.Bucket(bucketSnapshots).Get([]byte(name))
	if raw == nil {
		return record{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return record{}, fmt.Errorf("snapshot %q: corrupt record: %w", name, err)
	}
	return r, nil
}

func putRecord(tx *bolt.Tx, name string, r record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSnapshots).Put([]byte(name), raw)
}

// committedParent checks that parent names a committed snapshot.
func committedParent(tx *bolt.Tx, parent string) (record, error) {
	r, err := getRecord(tx, parent)
	if err != nil {
		return record{}, fmt.Errorf("parent: %w", err)
	}
	if r.Kind != Committed {
		return record{}, fmt.Errorf("%w: parent %q is %s, not committed", ErrInvalid, parent, r.Kind)
	}
	return r, nil
}

// children lists up to max snapshots whose parent is name. A linear scan:
// a root holds thousands of snapshots at most, and Remove is rare.
func children(tx *bolt.Tx, name string, max int) ([]string, error) {
	var out []string
	err := tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("snapshot %q: corrupt record: %w", k, err)
		}
		if r.Parent == name && len(out) < max {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

// chain returns the records from name's parent down to the base layer,
// top first.
func chain(tx *bolt.Tx, parent string) ([]record, error) {
	var out []record
	for parent != "" {
		r, err := committedParent(tx, parent)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if len(out) > maxChain {
			return nil, fmt.Errorf("%w: chain below %q is deeper than %d layers", ErrInvalid, parent, maxChain)
		}
		parent = r.Parent
	}
	return out, nil
}

// maxChain bounds chain walks; overlayfs itself stacks at most 500 lower
// layers (OVL_MAX_STACK).
const maxChain = 500
