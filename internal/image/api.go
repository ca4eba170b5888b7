package image

import (
	"context"
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Errors the API layer maps to docker's status codes: the shared classes of
// internal/errdefs, and one of the image store's own. Wrapped errors keep
// the detail; errors.Is finds the class.
var (
	ErrNotFound     = errdefs.ErrNotFound                // 404
	ErrInvalid      = errdefs.ErrInvalid                 // 400
	ErrConflict     = errdefs.ErrConflict                // 409 (image in use, ambiguous ID)
	ErrUnauthorized = errdefs.ErrUnauthorized            // 401
	ErrUnavailable  = errdefs.ErrUnavailable             // 500, as docker
	ErrNoPlatform   = errors.New("no matching manifest") // 404, as docker
)

// Image is one image in the store: a config (its digest is the image ID)
// reached from a manifest, with the names that point at it.
type Image struct {
	ID          digest.Digest      // config digest
	Names       []string           // normalised references, "docker.io/library/busybox:latest"
	RepoDigests []string           // "docker.io/library/busybox@sha256:..."
	Target      ocispec.Descriptor // the manifest
	Config      dockerspec.DockerOCIImage
	Layers      []Layer
	Size        int64     // unpacked size of all layers
	Created     time.Time // from the config, or the store time when it has none
	Pulled      time.Time // when the store got it (LastTagTime for docker)
}

// Layer is one layer of an image.
type Layer struct {
	Blob    ocispec.Descriptor // compressed blob as in the manifest
	DiffID  digest.Digest
	ChainID digest.Digest // snapshot name
	Size    int64         // unpacked size
}

// Auth is the credential a caller sends (docker's X-Registry-Auth); empty
// means "use ~/.docker/config.json and its helpers".
type Auth struct {
	Username, Password, IdentityToken, RegistryToken string
}

// Progress is one line of docker's pull/push/load progress stream.
type Progress struct {
	ID      string // short layer digest or the reference; empty for whole-image lines
	Status  string // "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete", "Already exists", "Pushing", "Pushed", "Layer already exists", "Loaded image: ..."
	Current int64
	Total   int64
}

// ProgressFunc receives progress lines; it is called from several goroutines
// at once and must not block for long.
type ProgressFunc func(Progress)

// PullOptions are the options of Pull.
type PullOptions struct {
	Platform *ocispec.Platform // nil: the host's
	Auth     *Auth
	Progress ProgressFunc
}

// PushOptions are the options of Push.
type PushOptions struct {
	Auth     *Auth
	Progress ProgressFunc
}

// RemoveResult is one line of docker's DELETE /images response.
type RemoveResult struct {
	Untagged string
	Deleted  string
}

// ListOptions filter List (docker's filters: reference, dangling, label,
// before, since).
type ListOptions struct {
	All     bool
	Filters map[string][]string
}

// HistoryEntry is one line of docker history.
type HistoryEntry struct {
	ID        string // image ID for the top entry, "<missing>" otherwise
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
	Tags      []string
}

// ImportOptions are the options of Import.
type ImportOptions struct {
	Ref      string   // name to give the image, optional
	Changes  []string // Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL
	Message  string
	Platform *ocispec.Platform
}

// Backend is what the Engine API needs from the image store; *Service
// implements it.
type Backend interface {
	Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error)
	Push(ctx context.Context, ref string, opts PushOptions) error
	Get(ctx context.Context, nameOrID string) (*Image, error)
	List(ctx context.Context, opts ListOptions) ([]*Image, error)
	Tag(ctx context.Context, source, target string) error
	Remove(ctx context.Context, nameOrID string, force, noPrune bool) ([]RemoveResult, error)
	Prune(ctx context.Context, all bool, filters map[string][]string) ([]RemoveResult, int64, error)
	History(ctx context.Context, nameOrID string) ([]HistoryEntry, error)
	Save(ctx context.Context, refs []string, w io.Writer) error
	Load(ctx context.Context, r io.Reader, progress ProgressFunc) ([]string, error)
	Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error)
	// DiskUsage is the bytes of every committed layer counted once.
	DiskUsage(ctx context.Context) (int64, error)
}

// Config configures a Service.
type Config struct {
	Root string // where blobs, snapshots and metadata live: <data-root>/image
	// Snapshotter is "overlay" or "copy"; empty picks overlay where the
	// kernel mounts it on Root's file system, copy elsewhere.
	Snapshotter string
	// Mirrors are registry mirrors for docker.io ("http://127.0.0.1:5000"),
	// tried in order before docker.io itself.
	Mirrors []string
	// Insecure lists registries (host[:port] or CIDR) spoken to over plain
	// HTTP or with unverified TLS; localhost and 127.0.0.0/8 always are.
	Insecure []string
	// InUse reports whether a container uses the image, so Remove refuses
	// it without force and Prune keeps it. Nil means none is.
	InUse func(id digest.Digest) bool
}
