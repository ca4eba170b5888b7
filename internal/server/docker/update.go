package docker

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// containerUpdater is the engine's docker update; the backend has it
// when it can change a container's limits.
type containerUpdater interface {
	Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error)
}

// updateResources answers POST /containers/{name}/update: new resource
// limits and restart policy, applied to the running container and
// recorded for its next start; docker's {"Warnings":[...]} in return.
func (s *Server) updateResources(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req container.UpdateConfig
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	u, ok := s.containers.(containerUpdater)
	if !ok {
		return &httpError{status: http.StatusNotImplemented, msg: "this berthd cannot update a container's resources"}
	}
	resp, err := u.Update(r.Context(), vars["name"], req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}
