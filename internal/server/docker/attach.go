package docker

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/errdefs"
)

// attachContainer answers POST
// /containers/{name}/attach?stream=&logs=&stdin=&stdout=&stderr=&detachKeys=
// by taking the connection over (hijack.go). The container is looked up
// first, so an unknown or paused one gets its status code; what fails
// later travels in the stream.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	insp, err := s.containers.Inspect(r.Context(), vars["name"], false)
	if err != nil {
		return err
	}
	if insp.State != nil && insp.State.Paused {
		return errdefs.Conflictf("You cannot attach to a paused container, unpause it first")
	}
	stdin, stdout, stderr := boolValue(r, "stdin"), boolValue(r, "stdout"), boolValue(r, "stderr")
	tty := insp.Config != nil && insp.Config.Tty
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The connection is taken over (101) only once the engine has the
	// attach in place: docker run and docker start -a start the
	// container when they have that answer, and must not miss its
	// first output. Until then the streams below lead nowhere, and the
	// engine uses none of them (AttachOptions.Registered).
	var h *hijacked
	var out streams
	in, outw, errw := &lateReader{}, &lateWriter{}, &lateWriter{}
	opts := engine.AttachOptions{Logs: boolValue(r, "logs"), Stream: boolValue(r, "stream"), DetachKeys: r.URL.Query().Get("detachKeys")}
	opts.Registered = func() error {
		var err error
		if h, err = hijack(w, r, streamType(r.Context(), tty)); err != nil {
			return err
		}
		h.watchGone(cancel)
		out = outputStreams(h, tty)
		in.r, outw.w, errw.w = h.in, out.stdout, out.stderr
		return nil
	}
	if stdin {
		opts.Stdin = in
	}
	if stdout {
		opts.Stdout = outw
	}
	if stderr {
		opts.Stderr = errw
	}
	err = s.containers.Attach(ctx, insp.ID, opts)
	if h == nil {
		// Refused before the attach was in place: an answer of its own.
		return err
	}
	defer h.close()
	if err != nil && ctx.Err() == nil {
		s.log.Debug("attach ended with error", "container", insp.ID, "err", err)
		// A container that was removed or could not start ends the
		// stream quietly, as with dockerd: the client learns why from
		// its start or wait call, not from text in the output.
		if !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotFound) {
			out.fail(err)
		}
	}
	return nil
}

// lateWriter and lateReader are an attach's streams before the
// connection is taken over; Registered points them at it.
type lateWriter struct{ w io.Writer }

func (l *lateWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

type lateReader struct{ r io.Reader }

func (l *lateReader) Read(p []byte) (int, error) { return l.r.Read(p) }

// streams are the writers of one hijacked stream: raw with a tty,
// stdcopy frames without.
type streams struct {
	stdout, stderr io.Writer
	fail           func(error)
}

func outputStreams(h *hijacked, tty bool) streams {
	if tty {
		return streams{stdout: h.conn, stderr: h.conn, fail: func(err error) {
			io.WriteString(h.conn, err.Error()+"\r\n")
		}}
	}
	mux := &muxStream{w: h.conn}
	stdout := mux.stream(stdcopy.Stdout)
	return streams{stdout: stdout, stderr: mux.stream(stdcopy.Stderr), fail: func(err error) {
		// dockerd writes the error on stdout, where the user sees it.
		io.WriteString(stdout, err.Error()+"\r\n")
	}}
}

// createExec answers POST /containers/{name}/exec.
func (s *Server) createExec(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req container.ExecCreateRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.ConsoleSize != nil && !req.Tty {
		return badRequest("console size is only supported when TTY is enabled")
	}
	id, err := s.containers.ExecCreate(r.Context(), vars["name"], req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// startExec answers POST /exec/{name}/start: detached it answers once the
// process runs; attached it takes the connection over like attach and
// holds it until the process ends.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req container.ExecStartRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.ConsoleSize != nil && !req.Tty {
		return badRequest("console size is only supported when TTY is enabled")
	}
	id := vars["name"]
	insp, err := s.containers.ExecInspect(r.Context(), id)
	if err != nil {
		return err
	}
	if insp.Running || insp.ExitCode != nil {
		return errdefs.Conflictf("exec %s has already run", id)
	}
	if req.Detach {
		if err := s.containers.ExecStart(r.Context(), id, engine.ExecStartOptions{Detach: true, ConsoleSize: req.ConsoleSize}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	tty := insp.ProcessConfig != nil && insp.ProcessConfig.Tty
	h, err := hijack(w, r, streamType(r.Context(), tty))
	if err != nil {
		return err
	}
	defer h.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.watchGone(cancel)
	out := outputStreams(h, tty)
	opts := engine.ExecStartOptions{ConsoleSize: req.ConsoleSize, Stdin: h.in, Stdout: out.stdout, Stderr: out.stderr}
	if err := s.containers.ExecStart(ctx, id, opts); err != nil && ctx.Err() == nil {
		s.log.Debug("exec ended with error", "exec", id, "err", err)
		out.fail(err)
	}
	return nil
}

// inspectExec answers GET /exec/{name}/json.
func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := s.containers.ExecInspect(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// resizeExec answers POST /exec/{name}/resize?h=&w=.
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	return noContent(w, s.containers.ExecResize(r.Context(), vars["name"], h, wd))
}
