package shim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Client talks to one container's shim. Each call is a connection of its
// own, so a Client is safe for concurrent use and survives nothing but
// the shim: when the shim is gone, calls fail with ErrShimNotRunning.
type Client struct {
	dir  string
	sock string
	pid  int // the init's, as Spawn's report gave it; 0 from Dial
}

// InitPid is the container's init as the shim reported it when Spawn
// created the container (a pid in the caller's namespace), so that the
// caller need not ask State for it; 0 for a client from Dial.
func (c *Client) InitPid() int { return c.pid }

// Dial returns a client for the shim serving the state directory dir,
// after checking that one answers.
func Dial(dir string) (*Client, error) {
	c := &Client{dir: dir, sock: filepath.Join(dir, SocketFile)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

// Dir is the state directory.
func (c *Client) Dir() string { return c.dir }

func (c *Client) connect(ctx context.Context) (*os.File, error) {
	conn, err := dialUnix(ctx, c.sock)
	if errors.Is(err, errNoListener) {
		return nil, fmt.Errorf("%w (%s)", ErrShimNotRunning, c.dir)
	}
	return conn, err
}

// call sends req on a new connection and decodes the response into resp;
// it returns the connection and its reader when keep is set (attach).
func (c *Client) call(ctx context.Context, req *request, keep bool) (*response, *os.File, *bufio.Reader, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	// The context's end interrupts the exchange through a deadline in the
	// past, which wakes the poller.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*response, *os.File, *bufio.Reader, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil, nil, nil, fmt.Errorf("%w (%s): %s: connection closed", ErrShimNotRunning, c.dir, req.Op)
		}
		return nil, nil, nil, fmt.Errorf("shim %s: %s: %w", c.dir, req.Op, err)
	}
	if err := writeJSONLine(conn, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	var resp response
	if err := readJSONLine(br, &resp); err != nil {
		return fail(err)
	}
	if resp.Error != nil {
		stop()
		conn.Close()
		return nil, nil, nil, fromWire(resp.Error)
	}
	if !keep {
		stop()
		conn.Close()
		return &resp, nil, nil, nil
	}
	if !stop() {
		conn.Close()
		return nil, nil, nil, ctx.Err()
	}
	return &resp, conn, br, nil
}

func (c *Client) do(ctx context.Context, req *request) (*response, error) {
	resp, _, _, err := c.call(ctx, req, false)
	return resp, err
}

// State returns the state of the container's init.
func (c *Client) State(ctx context.Context) (*State, error) {
	resp, err := c.do(ctx, &request{Op: opState})
	if err != nil {
		return nil, err
	}
	if resp.State == nil {
		return nil, fmt.Errorf("shim %s: state: empty answer", c.dir)
	}
	return resp.State, nil
}

// Start starts the container's init (`runtime start`).
func (c *Client) Start(ctx context.Context) error {
	_, err := c.do(ctx, &request{Op: opStart})
	return err
}

// Kill sends sig to the init, or with all to every process of the
// container. ErrNotRunning once the init has exited.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := c.do(ctx, &request{Op: opKill, Signal: int(sig), All: all})
	return err
}

// Wait blocks until the init has exited and its output is in the log, and
// returns how it ended.
func (c *Client) Wait(ctx context.Context) (*Exit, error) {
	return c.wait(ctx, "")
}

func (c *Client) wait(ctx context.Context, execID string) (*Exit, error) {
	resp, err := c.do(ctx, &request{Op: opWait, Exec: execID})
	if err != nil {
		return nil, err
	}
	if resp.Exit == nil {
		return nil, fmt.Errorf("shim %s: wait: empty answer", c.dir)
	}
	return resp.Exit, nil
}

// Resize sets the size of the init's terminal.
func (c *Client) Resize(ctx context.Context, width, height uint16) error {
	_, err := c.do(ctx, &request{Op: opResize, Width: width, Height: height})
	return err
}

// Pause freezes the container; Resume thaws it. The shim reports the
// container as "paused" in between.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.do(ctx, &request{Op: opPause})
	return err
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.do(ctx, &request{Op: opResume})
	return err
}

// Delete deletes the container through the runtime (killing it first when
// it still runs), waits for its init to be reaped, and has the shim exit.
// exit.json and the log stay; the caller removes the directories.
func (c *Client) Delete(ctx context.Context) error {
	_, err := c.do(ctx, &request{Op: opDelete})
	return err
}

// ExecOptions describe an exec.
type ExecOptions struct {
	// ID names the exec within the container: letters, digits, '_', '.'
	// and '-', at most 128.
	ID string
	// Process is what to run; its Terminal field is set from Tty.
	Process *specs.Process
	// Tty gives the process a terminal; Stdin keeps its stdin open for
	// attached clients.
	Tty, Stdin bool
}

// Exec is one exec process in the container.
type Exec struct {
	c  *Client
	ID string
}

// Exec records a new exec; it runs when its Start is called. Attach before
// Start to see all of its output.
func (c *Client) Exec(ctx context.Context, o ExecOptions) (*Exec, error) {
	_, err := c.do(ctx, &request{Op: opExec, Exec: o.ID, Process: o.Process, Tty: o.Tty, Stdin: o.Stdin})
	if err != nil {
		return nil, err
	}
	return &Exec{c: c, ID: o.ID}, nil
}

// LoadExec returns the exec of that id, created earlier (by another
// client, before a restart of the engine); calls fail with ErrNotFound if
// the shim has none.
func (c *Client) LoadExec(id string) *Exec { return &Exec{c: c, ID: id} }

// Start runs the exec (`runtime exec --detach`).
func (e *Exec) Start(ctx context.Context) error {
	_, err := e.c.do(ctx, &request{Op: opStart, Exec: e.ID})
	return err
}

// State returns the exec's state.
func (e *Exec) State(ctx context.Context) (*State, error) {
	resp, err := e.c.do(ctx, &request{Op: opState, Exec: e.ID})
	if err != nil {
		return nil, err
	}
	return resp.State, nil
}

// Kill signals the exec's process.
func (e *Exec) Kill(ctx context.Context, sig syscall.Signal) error {
	_, err := e.c.do(ctx, &request{Op: opKill, Exec: e.ID, Signal: int(sig)})
	return err
}

// Wait blocks until the exec has exited and returns its exit.
func (e *Exec) Wait(ctx context.Context) (*Exit, error) {
	return e.c.wait(ctx, e.ID)
}

// Resize sets the size of the exec's terminal.
func (e *Exec) Resize(ctx context.Context, width, height uint16) error {
	_, err := e.c.do(ctx, &request{Op: opResize, Exec: e.ID, Width: width, Height: height})
	return err
}

// Attach attaches to the exec's stdio; see Client.Attach.
func (e *Exec) Attach(ctx context.Context, o AttachOptions) (*Attachment, error) {
	return e.c.attach(ctx, e.ID, o)
}
