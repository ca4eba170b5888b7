package engine

// The network verbs of docker's API (create, inspect, list, remove,
// prune, connect, disconnect) over internal/network; network.go is a
// container's networking through its life.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	berthnet "github.com/berth-project/berth/internal/network"
)

// errNoNetworks answers the network verbs of an engine without a
// network manager.
func errNoNetworks() error {
	return errdefs.Classify(errdefs.ErrNotImplemented, errors.New("berthd runs without networks"))
}

// NetworkCreate creates a user-defined network, as docker's POST
// /networks/create.
func (e *Engine) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	m := e.cfg.Network
	if m == nil {
		return network.CreateResponse{}, errNoNetworks()
	}
	resp, err := m.Create(ctx, req)
	if err != nil {
		return resp, err
	}
	e.emitNetwork(events.ActionCreate, resp.ID, req.Name, "")
	return resp, nil
}

// NetworkInspect describes a network and the running containers on it,
// as docker's GET /networks/{id}.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	if e.cfg.Network == nil {
		return network.Inspect{}, errNoNetworks()
	}
	return e.cfg.Network.Inspect(ref)
}

// NetworkList lists the networks, as docker's GET /networks.
func (e *Engine) NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	if e.cfg.Network == nil {
		return nil, errNoNetworks()
	}
	return e.cfg.Network.List(filters)
}

// NetworkRemove removes a user-defined network no running container is
// on, as docker's DELETE /networks/{id}.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	m := e.cfg.Network
	if m == nil {
		return errNoNetworks()
	}
	info, err := m.Inspect(ref)
	if err != nil {
		return err
	}
	if err := m.Remove(ctx, info.ID); err != nil {
		return err
	}
	e.emitNetwork(events.ActionDestroy, info.ID, info.Name, "")
	return nil
}

// NetworkPrune removes the user-defined networks no running container is
// on, as docker's POST /networks/prune.
func (e *Engine) NetworkPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	m := e.cfg.Network
	if m == nil {
		return network.PruneReport{}, errNoNetworks()
	}
	before, err := m.List(nil)
	if err != nil {
		return network.PruneReport{}, err
	}
	rep, err := m.Prune(ctx, filters)
	if err != nil {
		return rep, err
	}
	for _, n := range before {
		if slices.Contains(rep.NetworksDeleted, n.Name) {
			e.emitNetwork(events.ActionDestroy, n.ID, n.Name, "")
		}
	}
	return rep, nil
}

// connectionOf finds what a connect or disconnect acts on: the network
// manager, the container and the network.
func (e *Engine) connectionOf(netRef, ctrRef string) (*berthnet.Manager, *ctr, network.Inspect, error) {
	m := e.cfg.Network
	if m == nil {
		return nil, nil, network.Inspect{}, errNoNetworks()
	}
	c, err := e.lookup(ctrRef)
	if err != nil {
		return nil, nil, network.Inspect{}, err
	}
	info, err := m.Inspect(netRef)
	if err != nil {
		return nil, nil, network.Inspect{}, err
	}
	return m, c, info, nil
}

// NetworkConnect connects a container to a network, as docker's POST
// /networks/{id}/connect: a running container gets its endpoint at once
// (and a line in its hosts), any container the network in its settings
// for its next starts.
func (e *Engine) NetworkConnect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error {
	m, c, info, err := e.connectionOf(netRef, ctrRef)
	if err != nil {
		return err
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removing || c.removed {
		return conflictf("container %s is marked for removal", c.id)
	}
	if err := sharedNetworkConflict(container.NetworkMode(c.rec.HostConfig.NetworkMode), info); err != nil {
		return err
	}
	if !attachable(info) {
		return invalidf("network %s: driver %q cannot attach containers", info.Name, info.Driver)
	}
	if slices.Contains(networksOf(c.rec), info.Name) {
		return conflictf("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.rec.Name, "/"), info.Name)
	}
	if err := checkEndpoint(info, es); err != nil {
		return err
	}
	if c.rec.State.running() && c.rec.State.Pid > 0 {
		netns := fmt.Sprintf("/proc/%d/ns/net", c.rec.State.Pid)
		o := attachOptions(c.rec, "", false)
		endpointOptions(&o, configuredEndpoint(es))
		ep, err := m.Attach(ctx, info.ID, c.id, netns, o)
		if err != nil {
			return err
		}
		e.rewriteHosts(c)
		e.emitNetwork(events.ActionConnect, ep.NetworkID, ep.NetworkName, c.id)
	}
	materialize(c.rec)
	c.rec.NetworkingConfig.EndpointsConfig[info.Name] = configuredEndpoint(es)
	return c.save()
}

// NetworkDisconnect disconnects a container from a network, as docker's
// POST /networks/{id}/disconnect: a running container loses its endpoint
// (and its line in hosts) at once; the network leaves its settings.
// force disconnects a container that is not in the network's settings
// but holds an endpoint there.
func (e *Engine) NetworkDisconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	m, c, info, err := e.connectionOf(netRef, ctrRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := container.NetworkMode(c.rec.HostConfig.NetworkMode)
	if mode.IsHost() || info.Driver == "host" {
		return invalidf("container cannot be disconnected from host network or connected to host network")
	}
	configured := slices.Contains(networksOf(c.rec), info.Name)
	_, holds := info.Containers[c.id]
	if !configured && !(force && holds) {
		return conflictf("container %s is not connected to network %s", c.id, info.Name)
	}
	if holds {
		if err := m.Detach(ctx, info.ID, c.id); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
		e.rewriteHosts(c)
		e.emitNetwork(events.ActionDisconnect, info.ID, info.Name, c.id)
	}
	if !configured {
		return nil
	}
	materialize(c.rec)
	for n := range c.rec.NetworkingConfig.EndpointsConfig {
		if endpointName(n) == info.Name {
			delete(c.rec.NetworkingConfig.EndpointsConfig, n)
		}
	}
	return c.save()
}

// sharedNetworkConflict refuses to add a network to a container that
// has the host's, another container's or no network namespace, with
// docker's words.
func sharedNetworkConflict(mode container.NetworkMode, info network.Inspect) error {
	switch {
	case mode.IsHost() || info.Driver == "host":
		return invalidf("container cannot be disconnected from host network or connected to host network")
	case mode.IsContainer():
		return invalidf("container sharing network namespace with another container or host cannot be connected to any other network")
	case mode.IsNone() || info.Driver == "null":
		return invalidf("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	return nil
}

// materialize makes the record's endpoint settings name its networks
// explicitly, so that connect and disconnect can edit them. Callers hold
// c.mu.
func materialize(rec *record) {
	names := networksOf(rec)
	if rec.NetworkingConfig == nil {
		rec.NetworkingConfig = &network.NetworkingConfig{}
	}
	if rec.NetworkingConfig.EndpointsConfig == nil {
		rec.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	eps := rec.NetworkingConfig.EndpointsConfig
	if es, ok := eps[network.NetworkDefault]; ok {
		delete(eps, network.NetworkDefault)
		if _, taken := eps[network.NetworkBridge]; !taken {
			eps[network.NetworkBridge] = es
		}
	}
	for _, n := range names {
		if _, ok := eps[n]; !ok {
			eps[n] = &network.EndpointSettings{}
		}
	}
}

// rewriteHosts writes the hosts of a running container after a connect
// or disconnect. Callers hold c.mu.
func (e *Engine) rewriteHosts(c *ctr) {
	eps, err := e.orderedEndpoints(c)
	if err == nil {
		err = e.writeNetworkFiles(c, eps, false)
	}
	if err != nil {
		e.logf("container %s: rewrite hosts: %v", c.id, err)
	}
}
