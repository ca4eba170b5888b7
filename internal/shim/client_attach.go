package shim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// AttachOptions choose the streams of an attachment.
type AttachOptions struct {
	// Stdin, when set, is copied to the process's stdin (if it keeps one
	// open). When it ends, the process's stdin is closed, as docker does
	// for `run -i` (StdinOnce), unless KeepStdinOpen; a terminal's stdin
	// is never closed.
	Stdin         io.Reader
	KeepStdinOpen bool
	// Stdout and Stderr, when set, receive the output. With a terminal
	// there is one stream, on Stdout.
	Stdout, Stderr io.Writer
}

// Attachment is a client attached to a process's stdio.
type Attachment struct {
	conn *os.File
	done chan struct{}
	err  error
	stop func() bool
	once sync.Once
}

// Attach attaches to the init's stdio and returns once the shim has
// registered the attachment: output from then on reaches Stdout and
// Stderr. It lasts until the output ends (Wait returns nil), Close, or
// ctx's end.
func (c *Client) Attach(ctx context.Context, o AttachOptions) (*Attachment, error) {
	return c.attach(ctx, "", o)
}

func (c *Client) attach(ctx context.Context, execID string, o AttachOptions) (*Attachment, error) {
	req := &request{Op: opAttach, Exec: execID, Stdin: o.Stdin != nil, Stdout: o.Stdout != nil,
		Stderr: o.Stderr != nil, KeepStdinOpen: o.KeepStdinOpen}
	_, conn, br, err := c.call(ctx, req, true)
	if err != nil {
		return nil, err
	}
	a := &Attachment{conn: conn, done: make(chan struct{})}
	a.stop = context.AfterFunc(ctx, func() { a.Close() })
	go a.readOutput(br, o.Stdout, o.Stderr)
	if o.Stdin != nil {
		go a.copyInput(o.Stdin)
	}
	return a, nil
}

// errDetached is the end of an attachment closed by its client.
var errDetached = errors.New("detached")

// readOutput copies output frames to the writers until the end frame.
func (a *Attachment) readOutput(br *bufio.Reader, stdout, stderr io.Writer) {
	var err error
	buf := make([]byte, frameChunk)
	for {
		var stream byte
		var payload []byte
		stream, payload, err = readFrame(br, buf)
		if err != nil {
			break
		}
		if stream == streamEnd {
			err = nil
			break
		}
		var w io.Writer
		switch stream {
		case streamStdout:
			w = stdout
		case streamStderr:
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, werr := w.Write(payload); werr != nil {
			err = fmt.Errorf("write attached output: %w", werr)
			break
		}
	}
	a.finish(err)
}

func (a *Attachment) finish(err error) {
	a.once.Do(func() {
		switch {
		case errors.Is(err, errDetached):
			err = nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrClosed):
			err = fmt.Errorf("attach: %w: the stream ended early", ErrShimNotRunning)
		}
		a.err = err
		a.stop()
		a.conn.Close()
		close(a.done)
	})
}

// copyInput sends stdin in frames, and an empty frame at its end. It
// returns when in does, which may be after the attachment ended (an
// io.Reader cannot be interrupted).
func (a *Attachment) copyInput(in io.Reader) {
	buf := make([]byte, frameChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if werr := writeFrame(a.conn, streamStdin, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			writeFrame(a.conn, streamStdin, nil)
			return
		}
	}
}

// Wait blocks until the attachment ends: nil when the process's output
// ended or after Close (or the context's end); ErrShimNotRunning when the
// shim went away; a write error of Stdout or Stderr.
func (a *Attachment) Wait() error {
	<-a.done
	return a.err
}

// Done is closed when the attachment has ended.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Close detaches. The process's stdin is closed as when Stdin ends,
// unless KeepStdinOpen.
func (a *Attachment) Close() error {
	a.finish(errDetached)
	return nil
}
