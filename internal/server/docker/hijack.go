package docker

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The attach and exec routes take the connection over from net/http once
// the request is checked, with docker's upgrade dance:
//
//	client -> POST /containers/{id}/attach?stream=1&stdin=1...
//	          Connection: Upgrade, Upgrade: tcp
//	berthd -> HTTP/1.1 101 UPGRADED
//	          Content-Type: application/vnd.docker.raw-stream | ...multiplexed-stream
//	          Connection: Upgrade, Upgrade: tcp
//	then both ways raw bytes: the client's stdin up (a half close ends
//	it), the container's output down (framed unless there is a tty),
//	until berthd closes the connection when the output ends.
//
// A client that does not ask to upgrade gets "200 OK" and the same
// stream, as dockerd answers it.

// hijacked is a connection taken over after the response header.
type hijacked struct {
	conn net.Conn
	// in reads the client's bytes, including those net/http had
	// buffered past the request.
	in   io.Reader
	once sync.Once
	done chan struct{}

	// mu guards closed and wake: wake is the write end of a pipe that
	// ends watchGone's poll, -1 when there is no watch.
	mu     sync.Mutex
	closed bool
	wake   int
}

// hijack takes the connection over and writes the response header with
// mediaType and the server's common headers.
func hijack(w http.ResponseWriter, r *http.Request, mediaType string) (*hijacked, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack the connection: %w", err)
	}
	// net/http's deadlines do not apply to a stream that lasts as long as
	// a container.
	conn.SetDeadline(time.Time{})
	var b strings.Builder
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		b.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediaType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	} else {
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + mediaType + "\r\n")
	}
	w.Header().Write(&b)
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	return &hijacked{conn: conn, in: brw.Reader, done: make(chan struct{}), wake: -1}, nil
}

// close ends the stream: the client reads EOF.
func (h *hijacked) close() {
	h.once.Do(func() {
		close(h.done)
		// watchGone's poll holds a reference to the connection, and
		// Close waits for it to be let go: wake the poll first, or the
		// client reads its EOF only when the poll would have ended.
		h.mu.Lock()
		h.closed = true
		if h.wake >= 0 {
			unix.Write(h.wake, []byte{0})
			unix.Close(h.wake)
			h.wake = -1
		}
		h.mu.Unlock()
		h.conn.Close()
	})
}

// watchGone calls gone once the client has closed the connection in both
// directions, and not when it only closed its sending half (the end of
// its stdin, which the docker CLI sends at once when it has none). A read
// cannot tell the two apart; on a unix socket poll reports POLLHUP only
// for the full close. The watch ends with close.
func (h *hijacked) watchGone(gone func()) {
	sc, ok := h.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return
	}
	h.mu.Lock()
	if h.closed || h.wake >= 0 {
		h.mu.Unlock()
		unix.Close(p[0])
		unix.Close(p[1])
		return
	}
	h.wake = p[1]
	h.mu.Unlock()
	go func() {
		defer unix.Close(p[0])
		for {
			select {
			case <-h.done:
				return
			default:
			}
			hup := false
			err := raw.Control(func(fd uintptr) {
				fds := []unix.PollFd{{Fd: int32(fd)}, {Fd: int32(p[0]), Events: unix.POLLIN}}
				if n, err := unix.Poll(fds, -1); err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
					hup = true
				}
			})
			if err != nil || hup {
				gone()
				return
			}
		}
	}()
}
