package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"golang.org/x/term"
)

// errDetached ends a stream when the user typed the detach keys.
var errDetached = errors.New("detached from the container")

// streamOptions describe one attached stream: attach, exec and run.
type streamOptions struct {
	tty        bool
	stdin      io.Reader // nil: none attached
	stdout     io.Writer
	stderr     io.Writer
	detachKeys string
}

// stream copies the user's stdin up the hijacked connection and the
// container's output down, with the terminal in raw mode when there is a
// tty and stdin is one. It returns when the output ends, or with
// errDetached when the user typed the detach keys (a tty only, as
// docker's CLI).
func (c *CLI) stream(ctx context.Context, resp client.HijackedResponse, o streamOptions) error {
	defer resp.Close()
	in := o.stdin
	restore := func() {}
	if in != nil && o.tty {
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			state, err := term.MakeRaw(int(f.Fd()))
			if err != nil {
				return fmt.Errorf("unable to set the terminal to raw mode: %w", err)
			}
			var once sync.Once
			restore = func() { once.Do(func() { term.Restore(int(f.Fd()), state) }) }
		}
		keys, err := parseKeys(o.detachKeys)
		if err != nil {
			keys, _ = parseKeys("")
		}
		in = &escapeReader{r: in, keys: keys}
	}
	defer restore()

	outDone := make(chan error, 1)
	go func() {
		var err error
		if o.tty {
			_, err = io.Copy(o.stdout, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(o.stdout, o.stderr, resp.Reader)
		}
		restore()
		outDone <- err
	}()
	inDone := make(chan error, 1)
	go func() {
		var err error
		if in != nil {
			_, err = io.Copy(resp.Conn, in)
		}
		// The end of stdin (or none at all) is a half close: the
		// output goes on.
		resp.CloseWrite()
		inDone <- err
	}()
	for {
		select {
		case err := <-outDone:
			if err != nil && !errors.Is(err, io.EOF) && !isClosedConn(err) {
				return err
			}
			return nil
		case err := <-inDone:
			if errors.Is(err, errDetached) {
				return errDetached
			}
			inDone = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func isClosedConn(err error) bool {
	return err != nil && strings.Contains(err.Error(), "use of closed network connection")
}

// parseKeys reads docker's detach key list: "ctrl-<x>" (a-z, @, [, \, ],
// ^, _) or single characters, comma-separated; default ctrl-p,ctrl-q.
func parseKeys(s string) ([]byte, error) {
	if s == "" {
		s = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if rest, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-"); ok && len(rest) == 1 {
			switch ch := rest[0]; {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, fmt.Errorf("Invalid detach keys (%s) provided", s)
			}
			continue
		}
		if len(k) != 1 {
			return nil, fmt.Errorf("Invalid detach keys (%s) provided", s)
		}
		out = append(out, k[0])
	}
	return out, nil
}

// escapeReader passes stdin through until the detach keys arrive; bytes
// that may begin the sequence wait until it is clear they do not.
type escapeReader struct {
	r       io.Reader
	keys    []byte
	matched int
	pending []byte
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.pending) == 0 {
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					return 0, errDetached
				}
				continue
			}
			if e.matched > 0 {
				e.pending = append(e.pending, e.keys[:e.matched]...)
				e.matched = 0
				if b == e.keys[0] {
					e.matched = 1
					continue
				}
			}
			e.pending = append(e.pending, b)
		}
		if err != nil {
			if e.matched > 0 {
				e.pending = append(e.pending, e.keys[:e.matched]...)
				e.matched = 0
			}
			if len(e.pending) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}

// monitorSize sends the terminal's size now and on every SIGWINCH until
// ctx ends; resize is the container's or the exec's resize call.
func (c *CLI) monitorSize(ctx context.Context, resize func(h, w uint) error) {
	f, ok := c.Out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return
	}
	send := func() error {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil || w == 0 || h == 0 {
			return err
		}
		return resize(uint(h), uint(w))
	}
	// The process may not run yet when the first resize arrives: docker
	// retries a few times.
	go func() {
		for i := 0; i < 10; i++ {
			if send() == nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(10*(i+1)) * time.Millisecond):
			}
		}
	}()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				send()
			}
		}
	}()
}

// proxySignals forwards the signals berth receives to the container
// (docker's --sig-proxy) until ctx ends.
func (c *CLI) proxySignals(ctx context.Context, api *client.Client, id string) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				n := int(s.(syscall.Signal))
				if _, err := api.ContainerKill(context.WithoutCancel(ctx), id, client.ContainerKillOptions{Signal: fmt.Sprint(n)}); err != nil {
					fmt.Fprintf(c.Err, "error sending signal %d: %v\n", n, err)
				}
			}
		}
	}()
}
