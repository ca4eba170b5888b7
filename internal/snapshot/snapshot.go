package snapshot

import (
	"context"
	"errors"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Error kinds; wrapped errors name the key, the parent, the path.
var (
	ErrNotFound      = errors.New("snapshot not found")
	ErrAlreadyExists = errors.New("snapshot already exists")
	ErrHasChildren   = errors.New("snapshot has children")
	ErrInvalid       = errors.New("invalid snapshot request")
)

// Kind is the state of a snapshot.
type Kind int

const (
	// Committed snapshots are immutable layers, named by chain ID.
	Committed Kind = iota + 1
	// Active snapshots are being written: an extraction or a container's
	// writable layer.
	Active
	// View snapshots are read-only looks at a committed snapshot.
	View
)

func (k Kind) String() string {
	switch k {
	case Committed:
		return "committed"
	case Active:
		return "active"
	case View:
		return "view"
	}
	return "unknown"
}

// LabelExtraction marks an Active snapshot made by Extract. It is dropped
// by Commit, so an Active snapshot carrying it was never committed: after
// a crash, GC removes those older than any pull still running.
const LabelExtraction = "berth.snapshot/extraction"

// Info describes a snapshot.
type Info struct {
	Name    string // the key of an active snapshot or view, the chain ID of a committed one
	Parent  string // committed parent's name, "" for a base layer
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// Mount is one mount that, applied to a target, yields a snapshot's tree.
type Mount struct {
	Type    string // "overlay" or "bind"
	Source  string
	Options []string
}

// Spec is m as a runtime-spec mount on destination.
func (m Mount) Spec(destination string) specs.Mount {
	return specs.Mount{Destination: destination, Type: m.Type, Source: m.Source, Options: append([]string(nil), m.Options...)}
}

// Usage is the disk use of a snapshot's own directory: for overlay its
// diff, for copy the whole tree.
type Usage struct {
	Size   int64 // bytes of files (st_size), each inode once
	Inodes int64 // distinct inodes, directories included
}

// Caps says how the snapshotter's extractions work.
type Caps struct {
	// ParallelExtract: Extract does not need its parent committed, so the
	// layers of one pull may be extracted side by side (and committed in
	// order).
	ParallelExtract bool
	// OverlayWhiteouts: extraction directories take overlayfs whiteouts
	// (archive.WhiteoutOverlay); otherwise whiteouts are applied to the
	// copy of the parent (archive.WhiteoutApply).
	OverlayWhiteouts bool
}

// Snapshotter stores layer snapshots. Implementations are safe for
// concurrent use.
type Snapshotter interface {
	Caps() Caps
	// Extract makes the Active snapshot key (labelled LabelExtraction) that
	// a layer is written into, and returns that directory. With
	// Caps().ParallelExtract the directory is empty and parent need not be
	// committed yet; otherwise parent must be committed and the directory
	// is a copy of it.
	Extract(ctx context.Context, key, parent string) (dir string, err error)
	// Prepare makes the writable Active snapshot key over the committed
	// parent ("" for none) and returns its mounts.
	Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error)
	// View makes the read-only snapshot key of the committed parent and
	// returns its mounts.
	View(ctx context.Context, key, parent string, labels map[string]string) ([]Mount, error)
	// Mounts returns the mounts of an Active snapshot or View.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Commit turns the Active snapshot key into the Committed snapshot
	// name, atomically; its parent must be committed. If name exists
	// (another pull won the race) the error wraps ErrAlreadyExists and
	// key is left for the caller to remove.
	Commit(ctx context.Context, name, key string, labels map[string]string) error
	// Remove removes a snapshot without children (else ErrHasChildren).
	// An Active snapshot or View must be unmounted first.
	Remove(ctx context.Context, key string) error
	Stat(ctx context.Context, key string) (Info, error)
	// Walk calls fn for every snapshot, in name order.
	Walk(ctx context.Context, fn func(Info) error) error
	Usage(ctx context.Context, key string) (Usage, error)
	Close() error
}
