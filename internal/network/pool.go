package network

// The pool: network namespaces attached to a network ahead of need.
//
// An attach waits for two plugin executions (bridge, which runs
// host-local) and a detach for two more: on a small, loaded host about
// as long as a whole `run --network none` (bench/engine-net.sh). For a
// container that needs nothing an attachment made in advance lacks (no
// published ports, no fixed address or MAC), the engine asks Take for a
// namespace attached already, and its runtime joins it instead of making
// one. Per network in use, Config.Pool entries are kept ready:
//
//	fill      a namespace bind-mounted at <exec-root>/network/netns/<id>, lo up;
//	          pool/<id>.json "adding"; ADD with CNI container ID <id>; "attached": ready
//	Take      a ready entry, reserved for the container
//	Attach    given the reserved namespace (its init's /proc/<pid>/ns/net names
//	          it): the entry becomes the container's endpoint (endpoints/<ctr>/<net>.json
//	          with CNIID <id> and Pooled), its pool record goes, its DNS names come;
//	          a refill starts (not at Take: it would slow the creation down)
//	DetachAll the endpoint goes at once (DNS names, record); the entry goes back to
//	          pool/<id>.json "removing" and its release (releaseAddress) and unmount run in the background
//	Detach    (network disconnect) the same, release done before it returns
//
// An entry is used once: a container may have changed its namespace
// (routes, sysctls, interfaces with NET_ADMIN), so what it leaves is
// destroyed, never handed to another. An attach that asks for a fixed
// address holds the network's fills, waits for the fills and releases in
// flight and evicts a ready entry holding the address (holdFor): the
// address may be the one the next fill leases, or that of a pooled
// container removed a moment ago. Entries are never listed (network
// inspect reads the endpoint records) and have no DNS names until a
// container takes them. Remove of a network and Close drain its entries
// (fills finished, ready and reserved entries and releases done);
// Reconcile, after a kill -9 of berthd, releases every pool record and
// unmounts every namespace file no kept endpoint uses. Plugins of
// background work run at a lower priority (pluginExec).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// netPool is one network's entries. Under Manager.mu.
type netPool struct {
	ready   []*endpointRecord
	filling int
	// busy counts the fills and releases of the network's entries in
	// flight (Manager.poolIdle is signalled when it drops to 0): Remove
	// and Close wait for them, and so does an attach that asks for an
	// address, which one of them may hold.
	busy int
	// holds counts the attaches with a fixed address in progress: no
	// fill starts meanwhile, so none takes the address between the
	// attach's eviction and its ADD.
	holds   int
	stopped bool
}

func (m *Manager) poolDir() string            { return filepath.Join(m.cfg.ExecRoot, "pool") }
func (m *Manager) netnsDir() string           { return filepath.Join(m.cfg.ExecRoot, "netns") }
func (m *Manager) poolPath(id string) string  { return filepath.Join(m.poolDir(), id+".json") }
func (m *Manager) bgContext() context.Context { return inBackground(context.Background()) }

// cniID is the container ID CNI knows the endpoint by: the pool entry's
// for a container that took one, else the container's.
func cniID(e *endpointRecord) string {
	if e.CNIID != "" {
		return e.CNIID
	}
	return e.ContainerID
}

// poolable says the options need nothing a pool entry lacks.
func poolable(o AttachOptions) bool {
	reqs, err := portRequests(o.PortBindings, o.ExposedPorts, o.PublishAll, netip.IPv4Unspecified())
	return err == nil && len(reqs) == 0 && !o.IPv4.IsValid() && !o.IPv6.IsValid() && o.MAC == nil
}

// Take reserves a network namespace attached to the network already for
// the container, whose runtime is to join it (the spec's network
// namespace path); Attach with the container's namespace, which is then
// that one, adopts it. ok is false when the pool is off or empty, or the
// options need what an entry lacks (published ports, a fixed address or
// MAC): the container makes its own namespace and Attach runs ADD. The
// first use of a network starts its pool; Attach's adoption tops it up.
// DetachAll drops a reservation Attach did not adopt.
func (m *Manager) Take(ref, containerID string, o AttachOptions) (netnsPath string, ok bool) {
	if m.cfg.Pool <= 0 {
		return "", false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", false
	}
	r, err := m.lookupNetwork(ref)
	if err != nil || !r.isBridge() || !poolable(o) || m.checkAttach(r, containerID, &o) != nil {
		return "", false
	}
	key := containerID + "/" + r.ID
	if m.taken[key] != nil {
		return "", false
	}
	p := m.poolLocked(r.ID)
	if len(p.ready) == 0 {
		m.refillLocked(r, p)
		return "", false
	}
	e := p.ready[0]
	p.ready = p.ready[1:]
	m.taken[key] = e
	return e.NetNS, true
}

// poolLocked is the network's pool, made on first use.
// Preconditions: m.mu held.
func (m *Manager) poolLocked(networkID string) *netPool {
	p := m.pools[networkID]
	if p == nil {
		p = &netPool{}
		m.pools[networkID] = p
	}
	return p
}

// refillLocked starts the fills that bring the pool to its size.
// Preconditions: m.mu held.
func (m *Manager) refillLocked(r *record, p *netPool) {
	for !p.stopped && !m.closed && p.holds == 0 && len(p.ready)+p.filling < m.cfg.Pool {
		p.filling++
		p.busy++
		go m.fill(r, p)
	}
}

// workDone ends one fill or release of p counted in busy.
func (m *Manager) workDone(p *netPool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.workDoneLocked(p)
}

// workDoneLocked is workDone with m.mu held.
func (m *Manager) workDoneLocked(p *netPool) {
	if p.busy--; p.busy == 0 {
		m.poolIdle.Broadcast()
	}
}

// waitIdleLocked waits until no fill or release of p is in flight.
// Preconditions: m.mu held (released while waiting).
func (m *Manager) waitIdleLocked(p *netPool) {
	for p.busy > 0 {
		m.poolIdle.Wait()
	}
}

// holdFor frees an address a container asks for on r from the pool:
// fills are held until the returned function is called, the fills and
// releases in flight are waited for (a fill may have just leased the
// address, and a container removed a moment ago has its pooled entry's
// lease released in the background), then a ready entry that holds the
// address is released. Without it a fixed address next to the last one
// leased, or that of a container just removed, is refused as taken.
func (m *Manager) holdFor(ctx context.Context, r *record, match func(*endpointRecord) bool) (unhold func()) {
	m.mu.Lock()
	p := m.poolLocked(r.ID)
	p.holds++
	m.waitIdleLocked(p)
	m.mu.Unlock()
	m.evict(ctx, r, match)
	return func() {
		m.mu.Lock()
		p.holds--
		m.mu.Unlock()
	}
}

// fill makes one entry and adds it to the pool, or releases it when the
// pool stopped meanwhile.
func (m *Manager) fill(r *record, p *netPool) {
	defer m.workDone(p)
	e, err := m.makeEntry(m.bgContext(), r)
	m.mu.Lock()
	p.filling--
	keep := err == nil && !p.stopped && !m.closed
	if keep {
		p.ready = append(p.ready, e)
	}
	m.mu.Unlock()
	switch {
	case err != nil:
		m.logf("network %s: pool entry: %v", r.Name, err)
	case !keep:
		if err := m.releaseEntry(m.bgContext(), r, e); err != nil {
			m.logf("network %s: %v", r.Name, err)
		}
	}
}

// makeEntry makes a namespace and attaches it to the network. On error
// nothing of it is left but what a failed release leaves to Reconcile.
func (m *Manager) makeEntry(ctx context.Context, r *record) (*endpointRecord, error) {
	if err := m.ensureRealized(ctx, r); err != nil {
		return nil, err
	}
	id := newID()
	path := filepath.Join(m.netnsDir(), id)
	if err := makeNetNS(path); err != nil {
		return nil, err
	}
	dev, ino, err := netnsID(path)
	if err == nil {
		err = LoopbackUp(path)
	}
	if err != nil {
		removeNetNS(path)
		return nil, err
	}
	e := &endpointRecord{
		State: stateAdding, ContainerID: id, NetworkID: r.ID, EndpointID: newID(), IfName: "eth0",
		NetNS: path, NetNSDev: dev, NetNSIno: ino, Pooled: true,
	}
	if err := m.writePoolRecord(e); err != nil {
		removeNetNS(path)
		return nil, err
	}
	list, err := m.cniList(r, e)
	if err == nil {
		res, aerr := m.cniAdd(ctx, list, e)
		if err = aerr; err == nil {
			err = fillResult(e, res)
		}
	}
	if err == nil {
		e.State = stateAttached
		err = m.writePoolRecord(e)
	}
	if err != nil {
		if rerr := m.releaseEntry(ctx, r, e); rerr != nil {
			m.logf("network %s: %v", r.Name, rerr)
		}
		return nil, err
	}
	return e, nil
}

// releaseEntry detaches a pool entry (in its pool form: ContainerID is
// its own ID) and destroys its namespace: its interface and address go
// (releaseAddress) while its bind mount still names the namespace ADD
// saw, then the mount and the record go. r is nil when the network is
// gone: Reconcile's sweep of libcni's cache runs that DEL. On an error
// the record and the namespace stay for Reconcile.
func (m *Manager) releaseEntry(ctx context.Context, r *record, e *endpointRecord) error {
	e.State = stateRemoving
	if err := m.writePoolRecord(e); err != nil {
		return err
	}
	if r != nil {
		if err := m.releaseAddress(r, e); err != nil {
			return fmt.Errorf("release pool entry %s of network %s: %w", shortID(e.ContainerID), r.Name, err)
		}
	}
	if err := removeNetNS(e.NetNS); err != nil {
		return fmt.Errorf("release pool entry %s: %w", shortID(e.ContainerID), err)
	}
	if err := os.Remove(m.poolPath(e.ContainerID)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// releaseAddress undoes the ADD of a pool entry whose namespace is to
// be destroyed next, without starting a plugin: on the background work
// every `run` of a pooled container leaves (bench/engine-net.sh), each
// plugin program costs more than the work it does. A pool entry has no
// published ports, so its ADD ran the network's list without portmap
// (record.conflist): the bridge plugin alone, with host-local, and no
// masquerade of its own (berth's firewall rules are per network). What
// that DEL undoes is the veth and the address lease. The veth is
// deleted in the namespace (not left to the namespace's end: a
// container that joined it with --network container: may still hold
// it), the lease released in host-local's store as its DEL would
// (lease.go), and libcni's cached result dropped.
func (m *Manager) releaseAddress(r *record, e *endpointRecord) error {
	if ns := delNetNS(e); ns != "" {
		if err := inNetNS(ns, func() error { return deleteLink(e.IfName) }); err != nil {
			return err
		}
	}
	if err := m.releaseLeases(r.ID, cniID(e), e.IfName, e.IPv4.Addr(), e.IPv6.Addr()); err != nil {
		return err
	}
	return m.dropCachedResult(r.ID, cniID(e), e.IfName)
}

// poolForm is a container's pooled endpoint as the pool entry it was.
func poolForm(e *endpointRecord) *endpointRecord {
	return &endpointRecord{
		State: e.State, ContainerID: cniID(e), NetworkID: e.NetworkID, EndpointID: e.EndpointID, IfName: e.IfName,
		NetNS: e.NetNS, NetNSDev: e.NetNSDev, NetNSIno: e.NetNSIno, Pooled: true,
		IPv4: e.IPv4, IPv6: e.IPv6, Gateway4: e.Gateway4, Gateway6: e.Gateway6, MAC: e.MAC,
	}
}

// releaseLater releases a reserved entry no container adopted in the
// background, counted in its network's pool work so that Remove and
// Close wait for it, and tops the pool up. After Close, or without a
// network, it releases at once.
func (m *Manager) releaseLater(r *record, e *endpointRecord) {
	m.mu.Lock()
	if r == nil || m.closed {
		m.mu.Unlock()
		if err := m.releaseEntry(context.Background(), r, e); err != nil {
			m.logf("%v", err)
		}
		return
	}
	p := m.poolLocked(r.ID)
	p.busy++
	m.refillLocked(r, p)
	m.mu.Unlock()
	go func() {
		defer m.workDone(p)
		if err := m.releaseEntry(m.bgContext(), r, e); err != nil {
			m.logf("%v", err)
		}
	}()
}

// adopt makes the reserved entry pe the container's endpoint on r: its
// record moves from the pool to the container (the endpoint record is
// written first, so that a crash in between leaves the container's, and
// Reconcile drops the pool record of an adopted entry), then its DNS
// names.
func (m *Manager) adopt(r *record, pe *endpointRecord, containerID string, o AttachOptions) (*Endpoint, error) {
	e := *pe
	e.ContainerID, e.CNIID, e.State = containerID, pe.ContainerID, stateAttached
	m.setOptions(r, &e, o)
	if err := m.writeEndpoint(&e); err != nil {
		m.releaseLater(r, pe)
		return nil, err
	}
	if err := os.Remove(m.poolPath(pe.ContainerID)); err != nil && !os.IsNotExist(err) {
		m.logf("network %s: %v", r.Name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.resolves() {
		m.dns.Add(dnsRecord(r, &e))
	}
	// The pool is topped up now, not at Take: a fill beside the
	// container's creation would slow it down.
	if p := m.pools[r.ID]; p != nil {
		m.refillLocked(r, p)
	}
	ep := m.endpointOf(&e)
	return &ep, nil
}

// untake drops the container's reservations and releases their entries
// in the background.
func (m *Manager) untake(containerID string) {
	m.mu.Lock()
	var drop []*endpointRecord
	for key, pe := range m.taken {
		if strings.HasPrefix(key, containerID+"/") {
			drop = append(drop, pe)
			delete(m.taken, key)
		}
	}
	m.mu.Unlock()
	for _, pe := range drop {
		m.mu.Lock()
		r := m.networks[pe.NetworkID]
		m.mu.Unlock()
		m.releaseLater(r, pe)
	}
}

// evict releases the network's ready entries that match (all of them
// when match is nil) and says how many there were: an address a
// container asks for, or the last free ones of a small subnet, may be an
// entry's.
func (m *Manager) evict(ctx context.Context, r *record, match func(*endpointRecord) bool) int {
	m.mu.Lock()
	p := m.pools[r.ID]
	var out []*endpointRecord
	if p != nil {
		keep := p.ready[:0]
		for _, e := range p.ready {
			if match == nil || match(e) {
				out = append(out, e)
			} else {
				keep = append(keep, e)
			}
		}
		p.ready = keep
	}
	m.mu.Unlock()
	for _, e := range out {
		if err := m.releaseEntry(ctx, r, e); err != nil {
			m.logf("network %s: %v", r.Name, err)
		}
	}
	return len(out)
}

// stopPool stops the network's pool and releases its entries (ready,
// reserved, and those in flight once they land). The pool is forgotten:
// a network that stays (a failed Remove) gets a new one on its next use.
func (m *Manager) stopPool(ctx context.Context, r *record) error {
	m.mu.Lock()
	p := m.pools[r.ID]
	delete(m.pools, r.ID)
	var out []*endpointRecord
	if p != nil {
		p.stopped = true
		out, p.ready = p.ready, nil
	}
	for key, pe := range m.taken {
		if pe.NetworkID == r.ID {
			out = append(out, pe)
			delete(m.taken, key)
		}
	}
	if p != nil {
		m.waitIdleLocked(p)
	}
	m.mu.Unlock()
	var errs []error
	for _, e := range out {
		errs = append(errs, m.releaseEntry(ctx, r, e))
	}
	return errors.Join(errs...)
}

// closePools stops every pool and releases every entry not adopted:
// berthd's shutdown leaves no namespace of the pool behind.
func (m *Manager) closePools() error {
	m.mu.Lock()
	m.closed = true
	var rs []*record
	for id := range m.pools {
		if r := m.networks[id]; r != nil {
			rs = append(rs, r)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, r := range rs {
		errs = append(errs, m.stopPool(context.Background(), r))
	}
	// Reservations on networks without a pool entry in the map (none
	// today) and pools of networks gone.
	m.mu.Lock()
	var rest []*endpointRecord
	for key, pe := range m.taken {
		rest = append(rest, pe)
		delete(m.taken, key)
	}
	var ps []*netPool
	for id, p := range m.pools {
		p.stopped = true
		ps = append(ps, p)
		delete(m.pools, id)
	}
	for _, p := range ps {
		m.waitIdleLocked(p)
	}
	m.mu.Unlock()
	for _, pe := range rest {
		m.mu.Lock()
		r := m.networks[pe.NetworkID]
		m.mu.Unlock()
		errs = append(errs, m.releaseEntry(context.Background(), r, pe))
	}
	return errors.Join(errs...)
}

func (m *Manager) writePoolRecord(e *endpointRecord) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return writeFileAtomic(m.poolPath(e.ContainerID), data, 0o600)
}

// readPoolRecords reads every pool record.
func (m *Manager) readPoolRecords() ([]*endpointRecord, error) {
	entries, err := os.ReadDir(m.poolDir())
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []*endpointRecord
	for _, f := range entries {
		if !strings.HasSuffix(f.Name(), ".json") || strings.HasPrefix(f.Name(), ".") {
			continue
		}
		path := filepath.Join(m.poolDir(), f.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				continue // released meanwhile (Pool runs beside the pool's work)
			}
			return nil, err
		}
		e := &endpointRecord{}
		if err := json.Unmarshal(data, e); err != nil {
			return nil, fmt.Errorf("pool record %s: %w", path, err)
		}
		if e.ContainerID+".json" != f.Name() || !e.Pooled || filepath.Dir(e.NetNS) != m.netnsDir() || filepath.Base(e.NetNS) != e.ContainerID {
			return nil, fmt.Errorf("pool record %s: names entry %q at %q", path, e.ContainerID, e.NetNS)
		}
		out = append(out, e)
	}
	return out, nil
}

// PoolState counts the pool's entries by state, every network's: what
// tests compare the host's veths, leases and namespaces with.
type PoolState struct {
	// Ready entries wait for a container; Busy ones are being made or
	// released.
	Ready, Busy int
}

// Pool counts the pool's entries from its records.
func (m *Manager) Pool() (PoolState, error) {
	recs, err := m.readPoolRecords()
	var s PoolState
	for _, e := range recs {
		if e.State == stateAttached {
			s.Ready++
		} else {
			s.Busy++
		}
	}
	return s, err
}
