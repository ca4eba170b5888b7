package docker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/engine"
)

// pathStatHeader carries a path's stat on the archive routes: base64 of
// container.PathStat's JSON (docker cp reads it to decide how to copy).
const pathStatHeader = "X-Docker-Container-Path-Stat"

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", badRequest("path parameter is required")
	}
	return p, nil
}

func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

// statArchive answers HEAD /containers/{name}/archive?path=.
func (s *Server) statArchive(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.containers.StatPath(r.Context(), vars["name"], p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getArchive answers GET /containers/{name}/archive?path= with the tar of
// the path and its stat in the header.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := s.containers.CopyFrom(r.Context(), vars["name"], p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	tw := &lazyTarWriter{w: w}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := tw.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			if tw.started {
				s.log.Error("container archive failed mid-stream", "container", vars["name"], "path", p, "err", rerr)
				panic(http.ErrAbortHandler)
			}
			return rerr
		}
	}
	if !tw.started {
		tw.Write(nil)
	}
	return nil
}

// putArchive answers PUT
// /containers/{name}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=: the
// body is a tar extracted under path, which must be a directory.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	opts := engine.CopyToOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
	if err := s.containers.CopyTo(r.Context(), vars["name"], p, r.Body, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
