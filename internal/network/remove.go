package network

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
)

// Remove deletes a user-defined network: its host side (bridge, routes,
// firewall rules, DNS, address leases), then its record and configuration
// list. Refused, as docker refuses, for the predefined networks and while
// containers are attached.
func (m *Manager) Remove(ctx context.Context, ref string) error {
	m.mu.Lock()
	r, err := m.lookupNetwork(ref)
	if err == nil {
		err = m.checkRemove(r)
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	// Hold the network out of new attaches while its host side goes:
	// Attach looks networks up under m.mu, so drop it from the map first.
	m.mu.Lock()
	if err := m.checkRemove(r); err != nil {
		m.mu.Unlock()
		return err
	}
	delete(m.networks, r.ID)
	m.mu.Unlock()
	if err := m.stopPool(ctx, r); err != nil {
		m.logf("remove network %s: pool: %v", r.Name, err)
	}
	if err := m.unrealize(ctx, r); err != nil {
		m.mu.Lock()
		m.networks[r.ID] = r
		m.mu.Unlock()
		return fmt.Errorf("remove network %s: %w", r.Name, err)
	}
	m.mu.Lock()
	m.forget(r)
	m.mu.Unlock()
	return nil
}

// checkRemove refuses to remove a predefined network or one in use.
// Preconditions: m.mu held.
func (m *Manager) checkRemove(r *record) error {
	if r.Default || r.Driver == driverHost || r.Driver == driverNull {
		return forbiddenf("%s is a pre-defined network and cannot be removed", r.Name)
	}
	eps, err := m.networkEndpoints(r.ID)
	if err != nil {
		return err
	}
	if len(eps) > 0 || m.busy[r.ID] > 0 {
		var who []string
		for _, e := range eps {
			who = append(who, fmt.Sprintf("name:%q id:%q", e.Name, shortID(e.ContainerID)))
		}
		return conflictf("error while removing network: network %s has active endpoints (%s)", r.Name, strings.Join(who, ", "))
	}
	return nil
}

// networkEndpoints are the endpoint records on the network, in any state.
// Preconditions: m.mu held.
func (m *Manager) networkEndpoints(id string) ([]*endpointRecord, error) {
	all, err := m.readEndpoints("")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e *endpointRecord) bool { return e.NetworkID != id }), nil
}

// Prune removes the user-defined networks no container is attached to,
// matching docker's prune filters (until, label, label!).
func (m *Manager) Prune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	match, err := pruneFilter(filters, time.Now())
	if err != nil {
		return network.PruneReport{}, err
	}
	m.mu.Lock()
	var names []string
	for _, r := range m.networks {
		if r.isBridge() && !r.Default && match(r) {
			names = append(names, r.Name)
		}
	}
	m.mu.Unlock()
	slices.Sort(names)
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range names {
		if err := m.Remove(ctx, n); err != nil {
			continue // in use: prune leaves it
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n)
	}
	return rep, nil
}
