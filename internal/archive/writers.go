package archive

import (
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// writers finish small regular files in goroutines: once Apply has created
// a file (in tar order, so every later entry sees it), writing its content
// and setting its owner, xattrs, mode and times touch only that file's
// descriptor, and can overlap with the next entries. On a layer of small
// files this moves most system calls off the goroutine that parses the tar.
//
// A later entry that replaces or removes the name unlinks it while a writer
// may still write the unlinked inode, which is harmless; a hardlink to it
// links the inode, which the writer finishes all the same. Apply waits for
// the writers before directories' metadata and before it returns.
type writers struct {
	a       *applier
	jobs    chan []*fileJob
	pending []*fileJob // the batch being filled
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.Mutex
	err     error // the first writer error, an *EntryError
}

const (
	// smallFile is the largest file a writer finishes: its content is
	// held in memory from the tar until then.
	smallFile = 64 << 10
	// Files go to the writers in batches, so that waking a writer (a
	// futex call, microseconds in a VM) is paid once per batch; the queue
	// bounds the batches in flight (descriptors and buffers).
	writerBatch = 16
	writerQueue = 4
)

var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

// newWriters starts the writers, or returns nil where there is one CPU
// (they would only add hand-offs).
func newWriters(a *applier) *writers {
	n := min(runtime.GOMAXPROCS(0), 2)
	if n < 2 {
		return nil
	}
	w := &writers{a: a, jobs: make(chan []*fileJob, writerQueue)}
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.run()
	}
	return w
}

func (w *writers) run() {
	defer w.wg.Done()
	for batch := range w.jobs {
		for _, f := range batch {
			w.finish(f)
		}
	}
}

// finish finishes one file, unless a writer already failed (Apply stops
// at the next entry then), and releases it.
func (w *writers) finish(f *fileJob) {
	defer w.release(f)
	if w.failed() != nil {
		return
	}
	err := w.a.finishFile(f)
	if cerr := unix.Close(f.fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: f.hdr.Name, Err: cerr}
	}
	f.fd = -1
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = &EntryError{Index: f.index, Name: f.hdr.Name, Err: err}
		}
		w.mu.Unlock()
	}
}

func (w *writers) buffer() *[]byte { return smallBuffers.Get().(*[]byte) }

// release closes the job's descriptor if it is still open and returns its
// buffer.
func (w *writers) release(f *fileJob) {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
	if f.buf != nil {
		smallBuffers.Put(f.buf)
		f.buf, f.data = nil, nil
	}
}

func (w *writers) submit(f *fileJob) {
	w.pending = append(w.pending, f)
	if len(w.pending) == writerBatch {
		w.jobs <- w.pending
		w.pending = make([]*fileJob, 0, writerBatch)
	}
}

// failed returns the first writer error, if any.
func (w *writers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait finishes every submitted file and stops the writers.
func (w *writers) wait() error {
	w.once.Do(func() {
		if len(w.pending) > 0 {
			w.jobs <- w.pending
			w.pending = nil
		}
		close(w.jobs)
		w.wg.Wait()
	})
	return w.failed()
}
