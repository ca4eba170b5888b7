package engine

import (
	"github.com/berth-project/berth/internal/shim"
	"sync"
	"time"
)

// ctr is one container in memory: its record and what exists only while
// the engine runs. mu guards everything but the immutable fields.
type ctr struct {
	// Immutable after create.
	id      string
	imageID string
	dir     string // data directory
	run     string // exec directory (bundle, shim socket)

	mu  sync.Mutex
	rec *record
	// task is the shim while the container has one (from start until
	// its exit was handled).
	task *shim.Client
	// changed is closed and replaced on every state change, waking
	// waiters (Wait, Stop, Attach before start).
	changed chan struct{}
	// removing is set while Remove tears the container down; removed
	// once it is gone.
	removing, removed bool
	// exitOnNext: the next exit is not restarted (stop, kill with the
	// stop signal, remove).
	exitOnNext bool
	// restartCancel cancels the pending restart of a policy's backoff;
	// restartDelay is the last backoff.
	restartCancel chan struct{}
	restartDelay  time.Duration
	// rootfs is where the container's root is mounted, "" when it is not.
	rootfs string
	// volumeMounts are the volumes Mount-ed for the running container.
	volumeMounts []string
	// health runs the health checks of a running container.
	health *healthCheck
	// pending are attaches waiting for the next start, so they see the
	// first byte of output (docker run attaches before it starts).
	pending []*pendingAttach
	// lastExit is the last exit code, kept for waiters on "removed";
	// exits counts exits, for waiters on "next-exit".
	lastExit int
	exits    int
	// execIDs are the container's exec sessions (inspect's ExecIDs).
	execIDs []string
}

func newCtr(e *Engine, rec *record) *ctr {
	return &ctr{
		id:      rec.ID,
		imageID: rec.ImageID,
		dir:     e.dataDir(rec.ID),
		run:     e.execDir(rec.ID),
		rec:     rec,
		changed: make(chan struct{}),
	}
}

// notify wakes everyone waiting for a change. Callers hold c.mu.
func (c *ctr) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// save writes the record. Callers hold c.mu.
func (c *ctr) save() error { return c.rec.save(c.dir) }
