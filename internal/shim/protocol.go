package shim

// The protocol on shim.sock. One request per connection:
//
//	client (berthd: shim.Client)                 shim (shim.sock)
//	----------------------------                 ----------------
//	connect
//	request: one JSON object, '\n'  ---------->  (at most maxRequest bytes)
//	                                 <---------  response: one JSON object, '\n'
//	                                             {"error":{"kind":..,"message":..}} on failure;
//	                                             "wait" answers when the process has exited
//	close                                        close
//
// except "attach", whose connection carries the process's stdio after an
// OK response, in frames of a 5-byte header (stream, then the payload
// length as a big-endian uint32) and the payload:
//
//	client                                        shim
//	{"op":"attach",...}\n          ---------->
//	                               <----------   {}\n
//	[0][n] stdin bytes             ---------->   written to the process's stdin
//	[0][0] end of stdin            ---------->   stdin closed (unless keepStdinOpen or a tty)
//	                               <----------   [1][n] stdout bytes (a tty's output too)
//	                               <----------   [2][n] stderr bytes
//	                               <----------   [3][0] end: every output stream reached its end
//	close                                        close
//
// Closing the connection early detaches. The shim writes output frames as
// the process writes: a client that stops reading eventually stops the
// process's output, as docker's attach does, rather than losing it.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Operations.
const (
	opState  = "state"
	opStart  = "start"
	opKill   = "kill"
	opWait   = "wait"
	opAttach = "attach"
	opResize = "resize"
	opExec   = "exec"
	opPause  = "pause"
	opResume = "resume"
	opDelete = "delete"
)

// request is what a client sends. Exec names the exec process that start,
// kill, wait, attach, resize and state apply to; empty means the init.
type request struct {
	Op     string `json:"op"`
	Exec   string `json:"exec,omitempty"`
	Signal int    `json:"signal,omitempty"`
	All    bool   `json:"all,omitempty"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// exec
	Process *specs.Process `json:"process,omitempty"`
	Tty     bool           `json:"tty,omitempty"`
	Stdin   bool           `json:"stdin,omitempty"`
	// attach
	Stdout        bool `json:"stdout,omitempty"`
	Stderr        bool `json:"stderr,omitempty"`
	KeepStdinOpen bool `json:"keepStdinOpen,omitempty"`
}

// response is what the shim answers.
type response struct {
	Error *wireError `json:"error,omitempty"`
	State *State     `json:"state,omitempty"`
	Exit  *Exit      `json:"exit,omitempty"`
}

type wireError struct {
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message"`
}

// maxRequest bounds a request line: an exec's process with a large
// environment fits many times over.
const maxRequest = 1 << 20

// Frame streams.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamEnd    = 3
)

// maxFrame bounds a frame's payload; writers send at most frameChunk.
const (
	maxFrame   = 1 << 20
	frameChunk = 32 << 10
)

// Status values of State.Status.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// State is a process's state: the container's init, or an exec.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	// Tty tells whether the process has a terminal.
	Tty bool `json:"tty,omitempty"`
	// StartedAt is when Start returned; zero before.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// The exit, once Status is "stopped".
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt,omitzero"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
}

// Exit is how a process ended; for the init it is also exit.json.
type Exit struct {
	// Code is the exit status, or 128+N when killed by signal N.
	Code      int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled"`
}

// writeJSONLine writes v and a newline in one write.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// errTooLong is a request or response line past maxRequest.
var errTooLong = errors.New("line too long")

// readJSONLine reads one line of at most maxRequest bytes and decodes it.
// It reads through br so that frames after the line stay buffered there.
func readJSONLine(br *bufio.Reader, v any) error {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, chunk...)
		if len(line) > maxRequest {
			return errTooLong
		}
		if !isPrefix {
			break
		}
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// writeFrame writes one frame in one write.
func writeFrame(w io.Writer, stream byte, p []byte) error {
	buf := make([]byte, 5+len(p))
	buf[0] = stream
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(p)))
	copy(buf[5:], p)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame's header and payload into buf (grown as
// needed) and returns the stream and payload.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes: more than %d", n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}
