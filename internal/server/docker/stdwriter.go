package docker

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// The multiplexed stream of attach, exec and logs for a container without
// a tty: each write becomes one frame,
//
//	[8]byte{STREAM, 0, 0, 0, SIZE (4 bytes, big endian)} then SIZE bytes
//
// with STREAM 1 for stdout, 2 for stderr and 3 for an error of the daemon
// (stdcopy's Systemerr: the client returns it as an error). The moby api
// module has only the reader (stdcopy.StdCopy); this is the writer.

// maxFrame caps one frame's payload so that a large write does not become
// one frame the client has to buffer whole.
const maxFrame = 32 << 10

// muxStream is one connection shared by the writers of its streams; the
// lock keeps the frames of concurrent writes whole.
type muxStream struct {
	mu sync.Mutex
	w  io.Writer
	// flush, when set, runs after every frame (an http.ResponseWriter).
	flush func() error
}

// stream returns the writer of one stream type.
func (m *muxStream) stream(t stdcopy.StdType) io.Writer { return &muxWriter{m: m, t: t} }

type muxWriter struct {
	m *muxStream
	t stdcopy.StdType
}

func (w *muxWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	n := 0
	var hdr [8]byte
	hdr[0] = byte(w.t)
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(chunk)))
		if _, err := w.m.w.Write(hdr[:]); err != nil {
			return n, err
		}
		k, err := w.m.w.Write(chunk)
		n += k
		if err != nil {
			return n, err
		}
		p = p[len(chunk):]
	}
	if w.m.flush != nil {
		if err := w.m.flush(); err != nil {
			return n, err
		}
	}
	return n, nil
}
