package shim

import (
	"bufio"
	"os"
)

// attach serves an attach request: after the OK response the connection
// carries frames (see protocol.go) until the output ends, the client hangs
// up, or the shim exits.
func (s *server) attach(conn *os.File, br *bufio.Reader, req *request) {
	p, err := s.lookup(req.Exec)
	if err != nil {
		writeJSONLine(conn, response{Error: toWire(err)})
		conn.Close()
		return
	}
	io := p.io
	wantStdin := req.Stdin && io.hasStdin()
	a := &attachment{conn: conn, stdout: req.Stdout, stderr: req.Stderr && !io.tty}
	// The attachment is registered before the client hears "ok": the
	// client starts the process once answered (the engine's attach
	// before start), and output read before the registration would
	// never reach it. Holding wmu keeps that output behind the answer.
	a.wmu.Lock()
	live := io.attach(a)
	werr := writeJSONLine(conn, response{})
	a.wmu.Unlock()
	if werr != nil {
		if live {
			io.detach(a)
		}
		conn.Close()
		return
	}
	if !live {
		a.end()
		return
	}
	defer func() {
		io.detach(a)
		a.close()
	}()
	buf := make([]byte, frameChunk)
	for {
		stream, payload, err := readFrame(br, buf)
		if err != nil {
			// Hung up (or detached): a `run -i` client's input is over
			// too, as docker sees it.
			if wantStdin && !req.KeepStdinOpen {
				io.closeStdin()
			}
			return
		}
		if stream != streamStdin || !wantStdin {
			continue
		}
		if len(payload) == 0 {
			if !req.KeepStdinOpen {
				io.closeStdin()
			}
			wantStdin = false
			continue
		}
		io.writeStdin(payload)
	}
}
