package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// The metadata database: three buckets, each value JSON.
//
//	images:  image ID -> record
//	names:   normalised reference (name:tag or name@digest) -> image ID
//	layers:  chain ID -> layerRecord
var (
	bucketImages = []byte("images")
	bucketNames  = []byte("names")
	bucketLayers = []byte("layers")
)

// record is what the store keeps about an image beyond its blobs.
type record struct {
	Target ocispec.Descriptor  `json:"target"` // manifest
	Index  *ocispec.Descriptor `json:"index,omitempty"`
	Pulled time.Time           `json:"pulled"`
	// Tagged is when a name last pointed at it (docker's LastTagTime).
	Tagged time.Time `json:"tagged,omitzero"`
}

// layerRecord is what the store keeps about an unpacked layer.
type layerRecord struct {
	DiffID digest.Digest `json:"diffID"`
	Size   int64         `json:"size"`
}

type metadata struct{ db *bolt.DB }

func openMetadata(path string) (*metadata, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("image metadata %s is locked by another process (is another berthd running?)", path)
		}
		return nil, fmt.Errorf("image metadata %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketNames, bucketLayers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("image metadata %s: %w", path, err)
	}
	return &metadata{db: db}, nil
}

func (m *metadata) close() error { return m.db.Close() }

func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("image metadata: entry %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// view and update run f in a read-only or read-write transaction with the
// three buckets.
type buckets struct{ images, names, layers *bolt.Bucket }

func (m *metadata) view(f func(b buckets) error) error {
	return m.db.View(func(tx *bolt.Tx) error {
		return f(buckets{tx.Bucket(bucketImages), tx.Bucket(bucketNames), tx.Bucket(bucketLayers)})
	})
}

func (m *metadata) update(f func(b buckets) error) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		return f(buckets{tx.Bucket(bucketImages), tx.Bucket(bucketNames), tx.Bucket(bucketLayers)})
	})
}

// namesOf returns every name that points at id, sorted as stored.
func namesOf(b buckets, id digest.Digest) []string {
	var names []string
	c := b.names.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(v) == id.String() {
			names = append(names, string(k))
		}
	}
	return names
}
