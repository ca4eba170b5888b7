package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// hostLocal runs the real host-local plugin on a dual-stack network of
// the manager's store, as the bridge plugin would.
type hostLocal struct {
	t     *testing.T
	cni   *libcni.CNIConfig
	conf  *libcni.PluginConfig
	netns string
}

func newHostLocal(t *testing.T, m *Manager, network string) *hostLocal {
	conf, err := libcni.ConfFromBytes([]byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"host-local",
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.77.0.0/24"}],[{"subnet":"fd77::/64"}]]}}`,
		network, m.ipamDir())))
	if err != nil {
		t.Fatal(err)
	}
	// host-local never enters the namespace, but the plugins' shared
	// code refuses to run without one that is not their own.
	netns := filepath.Join(t.TempDir(), "netns")
	if err := makeNetNS(netns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(netns) })
	return &hostLocal{t: t, cni: libcni.NewCNIConfigWithCacheDir([]string{plugins(t)}, m.cacheDir(), nil), conf: conf, netns: netns}
}

func (h *hostLocal) rt(id, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: h.netns, IfName: ifName}
}

func (h *hostLocal) add(id, ifName string) {
	h.t.Helper()
	if _, err := h.cni.AddNetwork(context.Background(), h.conf, h.rt(id, ifName)); err != nil {
		h.t.Fatalf("host-local ADD %s/%s: %v", id, ifName, err)
	}
}

func (h *hostLocal) del(id, ifName string) {
	h.t.Helper()
	if err := h.cni.DelNetwork(context.Background(), h.conf, h.rt(id, ifName)); err != nil {
		h.t.Fatalf("host-local DEL %s/%s: %v", id, ifName, err)
	}
}

// holders lists the store's leases as "<id>/<interface>", sorted, one
// per address.
func holders(t *testing.T, m *Manager, network string) []string {
	t.Helper()
	leases, err := readLeases(filepath.Join(m.ipamDir(), network))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range leases {
		out = append(out, l.containerID+"/"+l.ifName)
	}
	slices.Sort(out)
	return out
}

// TestReleaseLeasesAsHostLocal makes leases with the real host-local and
// checks that berthd's release of a pool entry's lease (lease.go) reads
// and changes its store as the plugin does: the leases of one container
// and interface go, in both families, and no other; the plugin's own
// DEL after it finds nothing to do; the plugin's next ADD works; and the
// release waits for the lock the plugin takes.
func TestReleaseLeasesAsHostLocal(t *testing.T) {
	requireRoot(t)
	m := &Manager{cfg: Config{ExecRoot: t.TempDir()}}
	const network = "n1"
	h := newHostLocal(t, m, network)
	h.add("a", "eth0")
	h.add("a", "eth1")
	h.add("b", "eth0")
	if got, want := holders(t, m, network), []string{"a/eth0", "a/eth0", "a/eth1", "a/eth1", "b/eth0", "b/eth0"}; !slices.Equal(got, want) {
		t.Fatalf("leases after ADD: %v, want %v (has host-local's format changed?)", got, want)
	}
	cached := filepath.Join(m.cacheDir(), "results", network+"-a-eth0")
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("libcni's cached result is not where dropCachedResult looks: %v", err)
	}

	if err := m.releaseLeases(network, "a", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := m.dropCachedResult(network, "a", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got, want := holders(t, m, network), []string{"a/eth1", "a/eth1", "b/eth0", "b/eth0"}; !slices.Equal(got, want) {
		t.Fatalf("leases after the release of a/eth0: %v, want %v", got, want)
	}
	if res, err := h.cni.GetNetworkCachedResult(h.conf, h.rt("a", "eth0")); err != nil || res != nil {
		t.Errorf("cached result of a/eth0 after the release: %v, %v", res, err)
	}
	h.del("a", "eth0") // nothing left to do: no error
	h.del("b", "eth0")
	h.add("c", "eth0")
	if got, want := holders(t, m, network), []string{"a/eth1", "a/eth1", "c/eth0", "c/eth0"}; !slices.Equal(got, want) {
		t.Fatalf("leases after the plugin's DEL of b and ADD of c: %v, want %v", got, want)
	}
	// With the addresses the ADD's result gave (a pool entry's record
	// has them), the release reads those files alone; an address now
	// another's is left to it.
	var cAddrs []netip.Addr
	leases, err := readLeases(filepath.Join(m.ipamDir(), network))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.containerID == "c" {
			cAddrs = append(cAddrs, netip.MustParseAddr(filepath.Base(l.path)))
		}
	}
	if len(cAddrs) != 2 {
		t.Fatalf("leases of c: %v", cAddrs)
	}
	if err := m.releaseLeases(network, "a", "eth1", cAddrs...); err != nil {
		t.Fatal(err)
	}
	if err := m.releaseLeases(network, "c", "eth0", cAddrs...); err != nil {
		t.Fatal(err)
	}
	if got, want := holders(t, m, network), []string{"a/eth1", "a/eth1"}; !slices.Equal(got, want) {
		t.Fatalf("leases after the release of c/eth0 by address: %v, want %v", got, want)
	}
	h.add("c", "eth0")

	// A store that was never made: nothing to release.
	if err := m.releaseLeases("never", "a", "eth0"); err != nil {
		t.Errorf("release on a network without a store: %v", err)
	}

	// The plugin waits for the lock berthd holds.
	unlock, err := lockStore(filepath.Join(m.ipamDir(), network))
	if err != nil || unlock == nil {
		t.Fatalf("lock: %v", err)
	}
	added := make(chan error, 1)
	go func() {
		_, err := h.cni.AddNetwork(context.Background(), h.conf, h.rt("d", "eth0"))
		added <- err
	}()
	select {
	case err := <-added:
		unlock()
		t.Fatalf("host-local's ADD ran while berthd held the store's lock (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	unlock()
	if err := <-added; err != nil {
		t.Fatal(err)
	}
}
