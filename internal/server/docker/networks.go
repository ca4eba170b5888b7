package docker

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/network"
)

// NetworkBackend is what the network routes need of the engine;
// *engine.Engine implements it. Connect and disconnect change containers,
// so the routes reach the network manager through the engine.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, netRef, ctrRef string, force bool) error
}

// networks is the daemon's network backend: the container backend, when
// it has networks.
func (s *Server) networks() (NetworkBackend, error) {
	if nb, ok := s.containers.(NetworkBackend); ok {
		return nb, nil
	}
	return nil, &httpError{status: http.StatusNotFound, msg: "berthd serves no networks"}
}

// listNetworks answers GET /networks?filters=.
func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	filters, err := parseFilters(r, "dangling", "driver", "id", "label", "name", "scope", "type")
	if err != nil {
		return err
	}
	list, err := nb.NetworkList(r.Context(), filters)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// inspectNetwork answers GET /networks/{id}?verbose=&scope=. berth's
// networks are local: a scope other than local finds none, as dockerd's
// swarm-less daemon answers.
func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	n, err := nb.NetworkInspect(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	if scope := r.URL.Query().Get("scope"); scope != "" && scope != n.Scope {
		return &httpError{status: http.StatusNotFound, msg: "network " + vars["name"] + " not found"}
	}
	return writeJSON(w, http.StatusOK, n)
}

// createNetwork answers POST /networks/create.
func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	var req network.CreateRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("network name is required")
	}
	resp, err := nb.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

// removeNetwork answers DELETE /networks/{id}.
func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	return noContent(w, nb.NetworkRemove(r.Context(), vars["name"]))
}

// connectNetwork answers POST /networks/{id}/connect.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	var req network.ConnectRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return badRequest("container is required: the ID or name of the container to connect")
	}
	if err := nb.NetworkConnect(r.Context(), vars["name"], req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// disconnectNetwork answers POST /networks/{id}/disconnect.
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	var req network.DisconnectRequest
	if err := decodeJSONBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return badRequest("container is required: the ID or name of the container to disconnect")
	}
	if err := nb.NetworkDisconnect(r.Context(), vars["name"], req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// pruneNetworks answers POST /networks/prune?filters=.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	nb, err := s.networks()
	if err != nil {
		return err
	}
	filters, err := parseFilters(r, "until", "label", "label!")
	if err != nil {
		return err
	}
	rep, err := nb.NetworkPrune(r.Context(), filters)
	if err != nil {
		return err
	}
	if rep.NetworksDeleted == nil {
		rep.NetworksDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
