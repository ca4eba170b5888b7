package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// recordFile is the engine's record of a container, in
// <data-root>/containers/<id>/.
const recordFile = "container.json"

// record is everything the engine keeps about a container across berthd
// restarts. Config and HostConfig are docker's own types, as the client
// sent them merged with the image's defaults (what inspect shows).
type record struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // with docker's leading "/"
	Created time.Time `json:"created"`
	// Path and Args are the command the container runs (entrypoint and
	// cmd), as inspect shows them.
	Path string   `json:"path"`
	Args []string `json:"args"`

	Config           *container.Config         `json:"config"`
	HostConfig       *container.HostConfig     `json:"hostConfig"`
	NetworkingConfig *network.NetworkingConfig `json:"networkingConfig,omitempty"`

	ImageID       string              `json:"image"` // config digest
	ImageManifest *ocispec.Descriptor `json:"imageManifest,omitempty"`
	// ChainID is the snapshot parent: the image's top layer.
	ChainID string `json:"chainID"`
	Driver  string `json:"driver"`

	State        state  `json:"state"`
	RestartCount int    `json:"restartCount"`
	Runtime      string `json:"runtime"` // path or name of the runtime binary

	// HasBeenStartedBefore and HasBeenManuallyStopped are docker's flags
	// for restart policies: unless-stopped does not bring back a container
	// the user stopped, even across a berthd restart.
	HasBeenStartedBefore   bool `json:"hasBeenStartedBefore,omitempty"`
	HasBeenManuallyStopped bool `json:"hasBeenManuallyStopped,omitempty"`

	Mounts []mountPoint `json:"mounts,omitempty"`
	// Network is what the container's network namespace is: "none",
	// "host", "bridge" or a user-defined network's name (a namespace
	// of its own, attached to its networks), "container:<id>".
	Network string `json:"network"`
}

// state is the lifecycle state; container.State is derived from it.
type state struct {
	Status     container.ContainerState `json:"status"`
	Pid        int                      `json:"pid,omitempty"`
	ExitCode   int                      `json:"exitCode"`
	Error      string                   `json:"error,omitempty"`
	OOMKilled  bool                     `json:"oomKilled,omitempty"`
	StartedAt  time.Time                `json:"startedAt,omitzero"`
	FinishedAt time.Time                `json:"finishedAt,omitzero"`
	Health     *container.Health        `json:"health,omitempty"`
}

// running tells whether a process exists (running or paused).
func (s *state) running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused
}

// mountPoint is one mount a container gets beyond its rootfs: docker's
// MountPoint (what inspect shows) and what the engine needs to rebuild it.
type mountPoint struct {
	container.MountPoint
	// CopyData copies the image's content at Destination into an empty
	// volume when the container starts (docker's default; nocopy off).
	CopyData bool `json:"copyData,omitempty"`
	// Anonymous: the volume was made for this container and goes with it
	// on rm -v and --rm.
	Anonymous bool `json:"anonymous,omitempty"`
	// Tmpfs options for a tmpfs mount (--mount type=tmpfs).
	TmpfsOptions string `json:"tmpfsOptions,omitempty"`
	// NonRecursive binds without the mounts beneath the source.
	NonRecursive bool `json:"nonRecursive,omitempty"`
}

// save writes the record atomically: temp file, fsync, rename.
func (r *record) save(dir string) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("container %s: encode record: %w", r.ID, err)
	}
	tmp, err := os.CreateTemp(dir, ".container-*.json")
	if err != nil {
		return fmt.Errorf("container %s: save record: %w", r.ID, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, recordFile))
	}
	if err != nil {
		return fmt.Errorf("container %s: save record: %w", r.ID, err)
	}
	return nil
}

// loadRecord reads dir/container.json.
func loadRecord(dir string) (*record, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, recordFile), err)
	}
	if r.ID == "" || r.ID != filepath.Base(dir) || r.Config == nil || r.HostConfig == nil {
		return nil, fmt.Errorf("%s: not a container record of %s", filepath.Join(dir, recordFile), filepath.Base(dir))
	}
	return &r, nil
}
