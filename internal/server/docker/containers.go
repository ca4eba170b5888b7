package docker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/logs"
)

// ContainerBackend is what the container, exec and volume routes need of
// the engine; *engine.Engine implements it.
type ContainerBackend interface {
	Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, []string, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, opts engine.StopOptions) error
	Restart(ctx context.Context, ref string, opts engine.StopOptions) error
	Kill(ctx context.Context, ref, signal string) error
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Wait(ctx context.Context, ref string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
	Remove(ctx context.Context, ref string, opts engine.RemoveOptions) error
	Rename(ctx context.Context, ref, newName string) error
	Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error)
	List(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error)
	Logs(ctx context.Context, ref string, opts engine.LogsOptions, fn func(*logs.Message) error) error
	Attach(ctx context.Context, ref string, opts engine.AttachOptions) error
	Resize(ctx context.Context, ref string, height, width uint) error
	Top(ctx context.Context, ref, psArgs string) (*container.TopResponse, error)
	Stats(ctx context.Context, ref string, opts engine.StatsOptions, fn func(*container.StatsResponse) error) error
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
	Export(ctx context.Context, ref string, w io.Writer) error
	StatPath(ctx context.Context, ref, p string) (container.PathStat, error)
	CopyFrom(ctx context.Context, ref, p string) (io.ReadCloser, container.PathStat, error)
	CopyTo(ctx context.Context, ref, p string, r io.Reader, opts engine.CopyToOptions) error
	Prune(ctx context.Context, filters map[string][]string) (*container.PruneReport, error)
	Commit(ctx context.Context, ref string, opts engine.CommitOptions) (string, error)

	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, opts engine.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error

	VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volume.Volume, error)
	VolumeList(ctx context.Context, filters map[string][]string) (*volume.ListResponse, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, filters map[string][]string) (*volume.PruneReport, error)
}

// The media types of attach, exec and logs streams (API 1.42 and later
// tell the client which of the two it gets).
const (
	mediaRaw         = "application/vnd.docker.raw-stream"
	mediaMultiplexed = "application/vnd.docker.multiplexed-stream"
)

// streamType is the media type of a stream for a container with or
// without a tty.
func streamType(ctx context.Context, tty bool) string {
	if tty || versionBefore(ctx, "1.42") {
		return mediaRaw
	}
	return mediaMultiplexed
}

// createContainer answers POST /containers/create?name=&platform=.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if _, err := parsePlatform(r.URL.Query().Get("platform")); err != nil {
		return err
	}
	var req container.CreateRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return badRequest("config cannot be empty in order to create a container")
	}
	id, warnings, err := s.containers.Create(r.Context(), r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: warnings})
}

// listContainers answers GET /containers/json?all=&limit=&size=&filters=.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, "ancestor", "before", "exited", "health", "id", "label", "name",
		"network", "since", "status", "volume", "is-task", "publish", "expose")
	if err != nil {
		return err
	}
	opts := engine.ListOptions{All: boolValue(r, "all"), Size: boolValue(r, "size"), Filters: filters}
	if v := r.URL.Query().Get("limit"); v != "" {
		if opts.Limit, err = strconv.Atoi(v); err != nil {
			return badRequest("invalid limit parameter %q: want an integer", v)
		}
	}
	list, err := s.containers.List(r.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

// inspectContainer answers GET /containers/{name}/json?size=.
func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := s.containers.Inspect(r.Context(), vars["name"], boolValue(r, "size"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// noContent answers a verb that has no body.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startContainer answers POST /containers/{name}/start. The host config
// that API 1.23 and earlier sent here is refused, as dockerd does.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var body map[string]json.RawMessage
	if err := decodeJSONBody(r, &body); err != nil {
		return err
	}
	if len(body) > 0 {
		return badRequest("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	err := s.containers.Start(r.Context(), vars["name"])
	if err != nil && !errors.Is(err, errdefs.ErrNotModified) && !errors.Is(err, errdefs.ErrNotFound) {
		// dockerd removes a --rm container that failed to start, whatever
		// the failure (a missing program is a 400): the docker CLI waits
		// for its removal before it reports the error.
		if insp, ierr := s.containers.Inspect(r.Context(), vars["name"], false); ierr == nil && insp.HostConfig != nil && insp.HostConfig.AutoRemove {
			if rerr := s.containers.Remove(context.WithoutCancel(r.Context()), insp.ID, engine.RemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
				s.log.Warn("remove a --rm container that failed to start", "container", insp.ID, "err", rerr)
			}
		}
	}
	return noContent(w, err)
}

// stopOptions reads the t and signal parameters of stop and restart.
func stopOptions(r *http.Request) (engine.StopOptions, error) {
	opts := engine.StopOptions{Signal: r.URL.Query().Get("signal")}
	if v := r.URL.Query().Get("t"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return opts, badRequest("invalid t parameter %q: want a number of seconds", v)
		}
		opts.Timeout = &n
	}
	return opts, nil
}

// stopContainer answers POST /containers/{name}/stop?t=&signal=.
func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return noContent(w, s.containers.Stop(r.Context(), vars["name"], opts))
}

// restartContainer answers POST /containers/{name}/restart?t=&signal=.
func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return noContent(w, s.containers.Restart(r.Context(), vars["name"], opts))
}

// killContainer answers POST /containers/{name}/kill?signal=.
func (s *Server) killContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return noContent(w, s.containers.Kill(r.Context(), vars["name"], r.URL.Query().Get("signal")))
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return noContent(w, s.containers.Pause(r.Context(), vars["name"]))
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return noContent(w, s.containers.Unpause(r.Context(), vars["name"]))
}

// renameContainer answers POST /containers/{name}/rename?name=.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return noContent(w, s.containers.Rename(r.Context(), vars["name"], r.URL.Query().Get("name")))
}

// removeContainer answers DELETE /containers/{name}?force=&v=&link=.
func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if boolValue(r, "link") {
		return badRequest("invalid link parameter: berthd has no container links")
	}
	opts := engine.RemoveOptions{Force: boolValue(r, "force"), RemoveVolumes: boolValue(r, "v")}
	return noContent(w, s.containers.Remove(r.Context(), vars["name"], opts))
}

// waitContainer answers POST /containers/{name}/wait?condition=. The 200
// status goes out as soon as the wait is registered, before the result:
// the docker CLI waits for it before it starts the container it runs.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	ch, err := s.containers.Wait(r.Context(), vars["name"], container.WaitCondition(r.URL.Query().Get("condition")))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil {
		return err
	}
	var resp container.WaitResponse
	select {
	case res, ok := <-ch:
		if !ok {
			return r.Context().Err()
		}
		resp = res
	case <-s.stopping:
		// berthd is going away; the container is not. Say so in the
		// answer rather than leaving the client with a cut stream.
		resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "berthd is shutting down"}}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(resp)
}

// resizeContainer answers POST /containers/{name}/resize?h=&w=.
func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	h, wd, err := sizeParams(r)
	if err != nil {
		return err
	}
	return noContent(w, s.containers.Resize(r.Context(), vars["name"], h, wd))
}

// sizeParams reads the h and w parameters of the resize routes.
func sizeParams(r *http.Request) (h, w uint, err error) {
	read := func(name string) (uint, error) {
		v := r.URL.Query().Get(name)
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return 0, badRequest("invalid %s parameter %q: want a number from 0 to 65535", name, v)
		}
		return uint(n), nil
	}
	if h, err = read("h"); err != nil {
		return 0, 0, err
	}
	if w, err = read("w"); err != nil {
		return 0, 0, err
	}
	return h, w, nil
}

// topContainer answers GET /containers/{name}/top?ps_args=.
func (s *Server) topContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := s.containers.Top(r.Context(), vars["name"], r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// containerChanges answers GET /containers/{name}/changes.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	changes, err := s.containers.Changes(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, changes)
}

// exportContainer answers GET /containers/{name}/export with the tar of
// its root filesystem.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if _, err := s.containers.Inspect(r.Context(), vars["name"], false); err != nil {
		return err
	}
	tw := &lazyTarWriter{w: w}
	if err := s.containers.Export(r.Context(), vars["name"], tw); err != nil {
		if tw.started {
			// See save: a truncated stream is the honest signal.
			s.log.Error("container export failed mid-stream", "container", vars["name"], "err", err)
			panic(http.ErrAbortHandler)
		}
		return err
	}
	if !tw.started {
		tw.Write(nil)
	}
	return nil
}

// pruneContainers answers POST /containers/prune?filters=.
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, "until", "label", "label!")
	if err != nil {
		return err
	}
	rep, err := s.containers.Prune(r.Context(), filters)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// commitContainer answers POST
// /commit?container=&repo=&tag=&author=&comment=&changes=&pause=: an image
// of the container's changes on its image; the body, when present, is
// the config of the new image.
func (s *Server) commitContainer(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	q := r.URL.Query()
	var cfg container.Config
	var body map[string]json.RawMessage
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return err
	}
	if len(raw) > maxJSONBody {
		return badRequest("request body larger than %d bytes", maxJSONBody)
	}
	opts := engine.CommitOptions{Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"], Pause: true}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return badRequest("invalid JSON body: %v", err)
		}
		if len(body) > 0 {
			if err := json.Unmarshal(raw, &cfg); err != nil {
				return badRequest("invalid JSON body: %v", err)
			}
			opts.Config = &cfg
		}
	}
	if v := q.Get("pause"); v != "" {
		opts.Pause = boolValue(r, "pause")
	}
	if repo := q.Get("repo"); repo != "" {
		opts.Ref = repo
		if tag := q.Get("tag"); tag != "" {
			opts.Ref += ":" + tag
		}
	} else if q.Get("tag") != "" {
		return badRequest("tag parameter without repo")
	}
	id, err := s.containers.Commit(r.Context(), q.Get("container"), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}

// logsParams reads the parameters of GET /containers/{name}/logs.
func logsParams(r *http.Request) (engine.LogsOptions, bool, error) {
	q := r.URL.Query()
	opts := engine.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Tail: -1}
	if !opts.Stdout && !opts.Stderr {
		return opts, false, badRequest("Bad parameters: you must choose at least one stream")
	}
	var err error
	if opts.Since, err = logsTime(q.Get("since"), "since"); err != nil {
		return opts, false, err
	}
	if opts.Until, err = logsTime(q.Get("until"), "until"); err != nil {
		return opts, false, err
	}
	switch v := strings.TrimSpace(q.Get("tail")); v {
	case "", "all":
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return opts, false, badRequest("invalid tail parameter %q: want a number or \"all\"", v)
		}
		if n >= 0 {
			opts.Tail = n
		}
	}
	return opts, boolValue(r, "timestamps"), nil
}

// logsTime reads a since or until parameter; "" and "0" are no bound.
func logsTime(v, name string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	n, err := parseUnixTime(name, v)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}

// logsTimeFormat is docker's timestamp of a log line: RFC 3339 with
// nanoseconds always nine digits wide.
const logsTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// containerLogs answers GET /containers/{name}/logs: the messages of the
// json-file log in docker's multiplexed stream, or raw for a container
// with a tty, flushed as they come with follow.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	ctx := r.Context()
	opts, timestamps, err := logsParams(r)
	if err != nil {
		return err
	}
	insp, err := s.containers.Inspect(ctx, vars["name"], false)
	if err != nil {
		return err
	}
	tty := insp.Config != nil && insp.Config.Tty
	w.Header().Set("Content-Type", streamType(ctx, tty))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return err
	}
	mux := &muxStream{w: w}
	stdout, stderr := io.Writer(w), io.Writer(w)
	if !tty {
		stdout, stderr = mux.stream(1), mux.stream(2)
	}
	var buf []byte
	err = s.containers.Logs(ctx, insp.ID, opts, func(m *logs.Message) error {
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		buf = buf[:0]
		if timestamps {
			buf = m.Time.UTC().AppendFormat(buf, logsTimeFormat)
			buf = append(buf, ' ')
		}
		buf = append(buf, m.Line...)
		if _, err := out.Write(buf); err != nil {
			return err
		}
		if opts.Follow {
			return rc.Flush()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		s.log.Debug("logs ended with error", "container", insp.ID, "err", err)
		if !tty {
			mux.stream(3).Write([]byte(err.Error()))
		}
	}
	return nil
}

// containerStats answers GET /containers/{name}/stats?stream=&one-shot=:
// one JSON sample per line, every second while streaming.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	stream := true
	if v := r.URL.Query().Get("stream"); v != "" {
		stream = boolValue(r, "stream")
	}
	opts := engine.StatsOptions{Stream: stream, OneShot: boolValue(r, "one-shot")}
	if opts.OneShot && stream {
		return badRequest("cannot have stream=true and one-shot=true")
	}
	if _, err := s.containers.Inspect(r.Context(), vars["name"], false); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	return s.containers.Stats(r.Context(), vars["name"], opts, func(st *container.StatsResponse) error {
		if err := enc.Encode(st); err != nil {
			return err
		}
		return rc.Flush()
	})
}
