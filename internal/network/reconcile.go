package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

// Reconcile removes what belongs to containers that no longer exist: the
// endpoints of containers live does not know, endpoints a crash left half
// made or half removed, the pool's entries (pool.go) and namespaces, CNI
// cache entries without an endpoint, and address leases without an
// attached endpoint. DEL runs for each (it
// releases the address, the veth if its namespace is still there, and
// the published ports' rules), so a berthd killed with -9 in the middle
// of an attach leaves nothing behind once it has started again.
//
// Preconditions: no Attach or Detach runs concurrently (berthd calls it
// once, at start, before serving).
func (m *Manager) Reconcile(ctx context.Context, live func(containerID string) bool) error {
	eps, err := m.readEndpoints("")
	if err != nil {
		return err
	}
	var errs []error
	keep := map[string]bool{}    // "<network>/<CNI container ID>/<ifname>" of the kept endpoints
	keptNS := map[string]bool{}  // the pooled namespaces of kept endpoints
	adopted := map[string]bool{} // pool entries containers took
	for _, e := range eps {
		m.mu.Lock()
		r := m.networks[e.NetworkID]
		m.mu.Unlock()
		if e.State == stateAttached && live(e.ContainerID) && r != nil {
			keep[e.NetworkID+"/"+cniID(e)+"/"+e.IfName] = true
			if e.Pooled {
				keptNS[e.NetNS] = true
				adopted[e.CNIID] = true
			}
			// Its network's host side is made again if a manager
			// before this one made it (the default bridge's is made
			// on demand): idempotent, and the container needs it.
			if err := m.ensureRealized(ctx, r); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if r == nil {
			// Its network is gone: DEL from the cached configuration
			// below, then drop the record (and a pooled namespace,
			// with the unused ones below).
			m.removeEndpoint(e)
			continue
		}
		if e.Pooled {
			adopted[e.CNIID] = true
		}
		if err := m.detach(ctx, r, e, false); err != nil {
			errs = append(errs, err)
		}
	}

	// The pool's entries: none outlives a berthd. An entry a container
	// adopted (its endpoint record names it) was handled above.
	pool, err := m.readPoolRecords()
	if err != nil {
		errs = append(errs, err)
	}
	for _, pe := range pool {
		if adopted[pe.ContainerID] {
			os.Remove(m.poolPath(pe.ContainerID))
			continue
		}
		m.mu.Lock()
		r := m.networks[pe.NetworkID]
		m.mu.Unlock()
		if err := m.releaseEntry(ctx, r, pe); err != nil {
			errs = append(errs, err)
		}
	}
	// Namespaces berth made that no kept endpoint uses: a crash between
	// the making of one and its record, or a release that failed.
	if des, err := os.ReadDir(m.netnsDir()); err == nil {
		for _, de := range des {
			path := filepath.Join(m.netnsDir(), de.Name())
			if !keptNS[path] {
				errs = append(errs, removeNetNS(path))
			}
		}
	}

	// Cache entries with no kept endpoint: an ADD whose record was lost,
	// or a network removed under its endpoint.
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range atts {
		if keep[a.Network+"/"+a.ContainerID+"/"+a.IfName] {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The namespace is not known to be the one ADD saw: DEL
		// without entering any.
		rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, IfName: a.IfName, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs}
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, err)
		}
	}

	errs = append(errs, m.releaseStrayLeases(keep))
	return errors.Join(errs...)
}

// releaseStrayLeases removes host-local's leases (lease.go) whose
// container has no kept endpoint on that network, and the stores of
// networks gone.
func (m *Manager) releaseStrayLeases(keep map[string]bool) error {
	nets, err := os.ReadDir(m.ipamDir())
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, n := range nets {
		if !n.IsDir() {
			continue
		}
		dir := filepath.Join(m.ipamDir(), n.Name())
		m.mu.Lock()
		_, known := m.networks[n.Name()]
		m.mu.Unlock()
		if !known {
			os.RemoveAll(dir) // the network is gone: all its leases are stray
			continue
		}
		leases, err := readLeases(dir)
		if err != nil {
			return err
		}
		for _, l := range leases {
			if !keep[n.Name()+"/"+l.containerID+"/"+l.ifName] {
				if err := os.Remove(l.path); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
	}
	return nil
}
