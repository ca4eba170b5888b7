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
	a    *applier
	jobs chan *fileJob
	wg   sync.WaitGroup
	once sync.Once
	mu   sync.Mutex
	err  error // the first writer error, an *EntryError
}

const (
	// smallFile is the largest file a writer finishes: its content is
	// held in memory from the tar until then.
	smallFile = 64 << 10
	// writerQueue bounds the files in flight (descriptors and buffers).
	writerQueue = 32
)

var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

// newWriters starts the writers, or returns nil where there is one CPU
// (they would only add hand-offs).
func newWriters(a *applier) *writers {
	n := min(runtime.GOMAXPROCS(0), 2)
	if n < 2 {
		return nil
	}
	w := &writers{a: a, jobs: make(chan *fileJob, writerQueue)}
	w.wg.Add(n)
	for i := 0; i < n; i++ {
		go w.run()
	}
	return w
}

func (w *writers) run() {
	defer w.wg.Done()
	for f := range w.jobs {
		if w.failed() == nil {
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
		w.release(f)
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

func (w *writers) submit(f *fileJob) { w.jobs <- f }

// failed returns the first writer error, if any.
func (w *writers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait finishes every submitted file and stops the writers.
func (w *writers) wait() error {
	w.once.Do(func() {
		close(w.jobs)
		w.wg.Wait()
	})
	return w.failed()
}
