package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/moby/moby/api/types/volume"
)

// Driver is the only driver: docker's "local".
const Driver = "local"

// LabelAnonymous marks an anonymous volume, as docker 23 and later do:
// prune removes only these unless asked for all.
const LabelAnonymous = "com.docker.volume.anonymous"

// recordFile is the record beside _data.
const recordFile = "volume.json"

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// record is what is kept about a volume beyond its directory.
type record struct {
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

// entry is a volume in memory.
type entry struct {
	name string
	rec  record
	// refs are the containers that use the volume.
	refs map[string]struct{}
	// mounted counts the users of a driver-option mount on _data.
	mounted int
}

// Store is the set of local volumes under one root. Its methods are safe
// for concurrent use.
type Store struct {
	root string
	mu   sync.Mutex
	vols map[string]*entry
	now  func() time.Time
}

// New opens the volumes under root (<data-root>/volumes), creating it. A
// directory without a record (docker's layout, or a crash between mkdir
// and the record) is adopted with its modification time.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	s := &Store{root: root, vols: map[string]*entry{}, now: time.Now}
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || !validName.MatchString(name) {
			continue
		}
		e := &entry{name: name, refs: map[string]struct{}{}}
		data, err := os.ReadFile(filepath.Join(root, name, recordFile))
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &e.rec); err != nil {
				return nil, fmt.Errorf("volume %s: %s: %w", name, recordFile, err)
			}
		case errors.Is(err, os.ErrNotExist):
			fi, err := os.Stat(filepath.Join(root, name, "_data"))
			if err != nil {
				// Neither record nor data: the remains of a removal.
				continue
			}
			e.rec.CreatedAt = fi.ModTime()
		default:
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
		s.vols[name] = e
	}
	return s, nil
}

// Root is the directory the volumes live in.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name string) string  { return filepath.Join(s.root, name) }
func (s *Store) data(name string) string { return filepath.Join(s.root, name, "_data") }

// Path is the host directory of a volume's content (docker's Mountpoint).
func (s *Store) Path(name string) string { return s.data(name) }

// checkName applies docker's rule for local volume names.
func checkName(name string) error {
	if len(name) < 2 {
		return classify(errdefs.ErrInvalid, fmt.Errorf("volume name is too short, names should be at least two alphanumeric characters"))
	}
	if !validName.MatchString(name) {
		return classify(errdefs.ErrInvalid, fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name))
	}
	return nil
}

// Create makes a volume, or returns the existing one of that name, as
// docker does. An empty name makes an anonymous volume named by 64 random
// hex digits and labelled LabelAnonymous.
func (s *Store) Create(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	if req.Driver != "" && req.Driver != Driver {
		return nil, classify(errdefs.ErrNotFound, fmt.Errorf("plugin %q not found", req.Driver))
	}
	if req.ClusterVolumeSpec != nil {
		return nil, classify(errdefs.ErrInvalid, errors.New("cluster volumes are not supported: this node is not a swarm manager"))
	}
	labels := maps.Clone(req.Labels)
	name := req.Name
	if name == "" {
		name = randomName()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelAnonymous] = ""
	} else if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkOptions(req.DriverOpts); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		return s.describe(e), nil
	}
	e := &entry{name: name, refs: map[string]struct{}{}, rec: record{
		CreatedAt: s.now().UTC().Truncate(time.Second),
		Labels:    labels,
		Options:   maps.Clone(req.DriverOpts),
	}}
	if err := os.MkdirAll(s.dir(name), 0o701); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	// docker's _data is 0755 root-owned; the image's copy-up sets the
	// owner and mode of the directory it came from.
	if err := os.Mkdir(s.data(name), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		os.RemoveAll(s.dir(name))
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := writeRecord(s.dir(name), e.rec); err != nil {
		os.RemoveAll(s.dir(name))
		return nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	s.vols[name] = e
	return s.describe(e), nil
}

// randomName is an anonymous volume's name: 64 hex digits, as docker's.
func randomName() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeRecord writes dir/volume.json atomically.
func writeRecord(dir string, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".volume-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, recordFile))
}

// describe is docker's view of a volume. Callers hold s.mu.
func (s *Store) describe(e *entry) *volume.Volume {
	v := &volume.Volume{
		Name:       e.name,
		Driver:     Driver,
		Mountpoint: s.data(e.name),
		CreatedAt:  e.rec.CreatedAt.Local().Format(time.RFC3339),
		Labels:     maps.Clone(e.rec.Labels),
		Options:    maps.Clone(e.rec.Options),
		Scope:      "local",
	}
	// docker answers {} rather than null for a volume without labels or
	// options; clients index them without checking.
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	return v
}

func notFound(name string) error {
	return classify(errdefs.ErrNotFound, fmt.Errorf("get %s: no such volume", name))
}

// Get returns the volume name.
func (s *Store) Get(ctx context.Context, name string) (*volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return nil, notFound(name)
	}
	return s.describe(e), nil
}

// Exists reports whether volume name exists.
func (s *Store) Exists(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.vols[name]
	return ok
}

// Anonymous reports whether volume name exists and is anonymous.
func (s *Store) Anonymous(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return false
	}
	_, anon := e.rec.Labels[LabelAnonymous]
	return anon
}

// List returns the volumes that match docker's filters (dangling, driver,
// label, name), sorted by name.
func (s *Store) List(ctx context.Context, filters map[string][]string) ([]*volume.Volume, error) {
	match, err := listFilter(filters)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*volume.Volume
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		e := s.vols[name]
		if match(e) {
			out = append(out, s.describe(e))
		}
	}
	return out, nil
}

// Usage returns the bytes below a volume's _data, for system df. Hard
// links count once; nothing is followed.
func (s *Store) Usage(ctx context.Context, name string) (int64, error) {
	if !s.Exists(name) {
		return 0, notFound(name)
	}
	return dirSize(ctx, s.data(name))
}

// Refs returns the containers using volume name, sorted.
func (s *Store) Refs(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(e.refs))
}

// Acquire records that container ref uses volume name.
func (s *Store) Acquire(name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		return notFound(name)
	}
	e.refs[ref] = struct{}{}
	return nil
}

// Release forgets that container ref uses volume name; an unknown volume
// or reference is not an error.
func (s *Store) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.vols[name]; ok {
		delete(e.refs, ref)
	}
}

// Remove removes volume name. A volume in use is refused with ErrConflict,
// force or not; force makes a missing volume no error, as docker's
// `volume rm -f`.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return notFound(name)
	}
	if len(e.refs) > 0 {
		return classify(errdefs.ErrConflict, fmt.Errorf("remove %s: volume is in use - %v", name, slices.Sorted(maps.Keys(e.refs))))
	}
	return s.remove(e)
}

// remove deletes a volume without references. Callers hold s.mu.
func (s *Store) remove(e *entry) error {
	// Whatever is mounted on _data (a driver-option mount left by a
	// crash) is detached first: RemoveAll would otherwise delete through
	// it into the host.
	if err := snapshot.Unmount(s.data(e.name)); err != nil {
		return fmt.Errorf("remove %s: %w", e.name, err)
	}
	// The record goes first: a crash after it leaves a directory New
	// adopts again rather than a record without data.
	if err := os.Remove(filepath.Join(s.dir(e.name), recordFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", e.name, err)
	}
	delete(s.vols, e.name)
	if err := os.RemoveAll(s.dir(e.name)); err != nil {
		return fmt.Errorf("remove %s: %w", e.name, err)
	}
	return nil
}

// Prune removes the unused volumes that match docker's prune filters
// (label, label!, all): anonymous volumes only unless all=true, as the
// API does from version 1.42.
func (s *Store) Prune(ctx context.Context, filters map[string][]string) (*volume.PruneReport, error) {
	match, err := pruneFilter(filters)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var victims []*entry
	for _, name := range slices.Sorted(maps.Keys(s.vols)) {
		e := s.vols[name]
		if len(e.refs) == 0 && match(e) {
			victims = append(victims, e)
		}
	}
	s.mu.Unlock()
	report := &volume.PruneReport{}
	var errs []error
	for _, e := range victims {
		size, _ := dirSize(ctx, s.data(e.name))
		s.mu.Lock()
		// It may have been taken or removed since.
		if s.vols[e.name] != e || len(e.refs) > 0 {
			s.mu.Unlock()
			continue
		}
		err := s.remove(e)
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		report.VolumesDeleted = append(report.VolumesDeleted, e.name)
		report.SpaceReclaimed += uint64(size)
	}
	sort.Strings(report.VolumesDeleted)
	return report, errors.Join(errs...)
}
