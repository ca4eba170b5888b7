package archive

import (
	"io"
)

// readAhead reads its source in a goroutine, so that the work beneath
// Apply's input (a decompressor, the hash of a verifying reader) runs on
// another core while Apply waits on file system calls: the overlap that
// `gzip -dc | tar -x` gets from being two processes.
//
// Only the goroutine reads the source, and stop waits for it, so once Apply
// returns the caller may read the source again.
type readAhead struct {
	src  io.Reader
	full chan []byte // filled chunks, closed after the last one
	free chan []byte // chunks to fill
	stop chan struct{}
	done chan struct{}
	err  error // the source's error, set before full is closed
	cur  []byte
	buf  []byte // the chunk cur is part of, to give back
}

const (
	readAheadChunk  = 256 << 10
	readAheadChunks = 4
)

func newReadAhead(src io.Reader) *readAhead {
	ra := &readAhead{
		src:  src,
		full: make(chan []byte, readAheadChunks),
		free: make(chan []byte, readAheadChunks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := 0; i < readAheadChunks; i++ {
		ra.free <- make([]byte, readAheadChunk)
	}
	go ra.fill()
	return ra
}

func (ra *readAhead) fill() {
	defer close(ra.done)
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		// Fill the chunk, so the reader takes few of them, but hand over
		// what there is when the source stops.
		n, err := io.ReadFull(ra.src, buf[:cap(buf)])
		if n > 0 {
			ra.full <- buf[:n]
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			ra.err = err
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf
			ra.buf = nil
		}
		b, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.buf, ra.cur = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// close stops the goroutine and waits for it: it may be in one Read of the
// source, which ends when the source does (a cancelled download does).
func (ra *readAhead) close() {
	close(ra.stop)
	for range ra.full {
		// Unblock a send; the chunks are dropped.
	}
	<-ra.done
}
