package docker

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

// listVolumes answers GET /volumes?filters=.
func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, "dangling", "driver", "label", "name")
	if err != nil {
		return err
	}
	resp, err := s.containers.VolumeList(r.Context(), filters)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// createVolume answers POST /volumes/create.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req volume.CreateRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	v, err := s.containers.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

// inspectVolume answers GET /volumes/{name}.
func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	v, err := s.containers.VolumeInspect(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// removeVolume answers DELETE /volumes/{name}?force=.
func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return noContent(w, s.containers.VolumeRemove(r.Context(), vars["name"], boolValue(r, "force")))
}

// pruneVolumes answers POST /volumes/prune?filters=: anonymous volumes
// no container uses, or all unused ones with the filter all=true.
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, "label", "label!", "all")
	if err != nil {
		return err
	}
	rep, err := s.containers.VolumePrune(r.Context(), filters)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
