package network

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
)

// describe is docker's description of the network, maps never nil.
// Preconditions: m.mu held.
func (m *Manager) describe(r *record) network.Network {
	n := r.Network
	n.Options = maps.Clone(r.Options)
	n.Labels = maps.Clone(r.Labels)
	n.IPAM.Options = maps.Clone(r.IPAM.Options)
	n.IPAM.Config = slices.Clone(r.IPAM.Config)
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.IPAM.Config == nil {
		n.IPAM.Config = []network.IPAMConfig{}
	}
	return n
}

// Inspect is docker's network inspect: the network and the containers
// attached to it.
func (m *Manager) Inspect(ref string) (network.Inspect, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookupNetwork(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	out := network.Inspect{Network: m.describe(r), Containers: map[string]network.EndpointResource{}}
	eps, err := m.networkEndpoints(r.ID)
	if err != nil {
		return network.Inspect{}, err
	}
	for _, e := range eps {
		if e.State != stateAttached {
			continue
		}
		res := network.EndpointResource{Name: e.Name, EndpointID: e.EndpointID, IPv4Address: e.IPv4, IPv6Address: e.IPv6}
		res.MacAddress = network.HardwareAddr(m.endpointOf(e).MAC)
		out.Containers[e.ContainerID] = res
	}
	return out, nil
}

// List is docker's network ls, filtered (driver, id, label, name, scope,
// type custom|builtin, dangling), sorted by name.
func (m *Manager) List(filters map[string][]string) ([]network.Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	eps, err := m.readEndpoints("")
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, e := range eps {
		used[e.NetworkID] = true
	}
	match, err := listFilter(filters, used)
	if err != nil {
		return nil, err
	}
	out := []network.Summary{}
	for _, r := range m.networks {
		if match(r) {
			out = append(out, network.Summary{Network: m.describe(r)})
		}
	}
	slices.SortFunc(out, func(a, b network.Summary) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// builtin says the network is one of docker's predefined ones.
func builtin(r *record) bool { return r.Default || r.Driver == driverHost || r.Driver == driverNull }

func listFilter(filters map[string][]string, used map[string]bool) (func(*record) bool, error) {
	var tests []func(*record) bool
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "driver":
			tests = append(tests, func(r *record) bool { return slices.Contains(values, r.Driver) })
		case "id":
			tests = append(tests, func(r *record) bool {
				return slices.ContainsFunc(values, func(v string) bool { return strings.HasPrefix(r.ID, v) })
			})
		case "name":
			tests = append(tests, func(r *record) bool {
				return slices.ContainsFunc(values, func(v string) bool { return strings.Contains(r.Name, v) })
			})
		case "scope":
			tests = append(tests, func(r *record) bool { return slices.Contains(values, r.Scope) })
		case "label":
			tests = append(tests, func(r *record) bool { return allLabels(values, r.Labels) })
		case "type":
			for _, v := range values {
				if v != "custom" && v != "builtin" {
					return nil, invalidf("invalid filter: 'type'='%s'", v)
				}
			}
			tests = append(tests, func(r *record) bool {
				return slices.Contains(values, map[bool]string{true: "builtin", false: "custom"}[builtin(r)])
			})
		case "dangling":
			want, err := strconv.ParseBool(values[0])
			if err != nil || len(values) > 1 {
				return nil, invalidf("invalid filter 'dangling=%s'", strings.Join(values, ","))
			}
			tests = append(tests, func(r *record) bool { return !builtin(r) && !used[r.ID] == want })
		default:
			return nil, invalidf("invalid filter '%s'", key)
		}
	}
	return func(r *record) bool {
		for _, t := range tests {
			if !t(r) {
				return false
			}
		}
		return true
	}, nil
}

func pruneFilter(filters map[string][]string, now time.Time) (func(*record) bool, error) {
	var tests []func(*record) bool
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "until":
			var cut time.Time
			for _, v := range values {
				t, err := untilTime(v, now)
				if err != nil {
					return nil, err
				}
				if t.After(cut) {
					cut = t
				}
			}
			tests = append(tests, func(r *record) bool { return r.Created.Before(cut) })
		case "label":
			tests = append(tests, func(r *record) bool { return allLabels(values, r.Labels) })
		case "label!":
			tests = append(tests, func(r *record) bool {
				return !slices.ContainsFunc(values, func(v string) bool { return allLabels([]string{v}, r.Labels) })
			})
		default:
			return nil, invalidf("invalid filter '%s'", key)
		}
	}
	return func(r *record) bool {
		for _, t := range tests {
			if !t(r) {
				return false
			}
		}
		return true
	}, nil
}

// untilTime reads docker's until value: a duration before now, a Unix
// timestamp, or an RFC 3339 time.
func untilTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if secs, frac, ok := strings.Cut(v, "."); ok || secs != "" {
		if s, err := strconv.ParseInt(secs, 10, 64); err == nil {
			ns := int64(0)
			if ok {
				if f, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64); err == nil {
					ns = f
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalidf("invalid filter 'until=%s': want a duration, a Unix timestamp or an RFC 3339 time", v)
}

// allLabels: every value ("key" or "key=value") matches the labels.
func allLabels(values []string, labels map[string]string) bool {
	for _, v := range values {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// Ports is the container's published ports on every network, for docker
// port and the container's inspect.
func (m *Manager) Ports(containerID string) (network.PortMap, error) {
	eps, err := m.Endpoints(containerID)
	if err != nil {
		return nil, err
	}
	out := network.PortMap{}
	for _, ep := range eps {
		for p, bs := range ep.Ports {
			out[p] = append(out[p], bs...)
		}
	}
	return out, nil
}

// Gateway is the network's IPv4 gateway (its IPv6 one when it has no
// IPv4), the address --add-host host-gateway names.
func (m *Manager) Gateway(ref string) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookupNetwork(ref)
	if err != nil {
		return netip.Addr{}, err
	}
	if g := r.gateway(true); g.IsValid() {
		return g, nil
	}
	if g := r.gateway(false); g.IsValid() {
		return g, nil
	}
	return netip.Addr{}, fmt.Errorf("network %s has no gateway", r.Name)
}
