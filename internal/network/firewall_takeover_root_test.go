package network

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A bridge whose rules belong to a network that is gone (the default
// bridge of a data root wiped, whose name the next berthd uses again) is
// taken over by the next network on it: ensure replaces the mappings
// instead of failing on them, and remove leaves nothing of the new
// network's.
func TestNFTablesTakeOverBridge(t *testing.T) {
	requireRoot(t)
	if err := exec.Command("nft", "list", "tables").Run(); err != nil {
		t.Skip("no nft")
	}
	ctx := context.Background()
	f := &nftFirewall{table: fmt.Sprintf("berthtest%d", time.Now().UnixNano()%1e6)}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", f.table).Run() })
	subnet := netip.MustParsePrefix("10.231.99.0/24")
	old := netRules{ID: newID(), Bridge: "bttake0", Subnets: []netip.Prefix{subnet}, Gateways: []netip.Addr{netip.MustParseAddr("10.231.99.1")}, ICC: true, Masquerade: true, Internal: true}
	if err := f.ensure(ctx, old); err != nil {
		t.Fatal(err)
	}
	next := old
	next.ID = newID()
	if err := f.ensure(ctx, next); err != nil {
		t.Fatalf("ensure of a second network on the bridge: %v", err)
	}
	out, err := exec.Command("nft", "list", "table", "inet", f.table).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bttake0" : jump n-` + shortID(next.ID) + `-in`, `"bttake0" : jump n-` + shortID(next.ID) + `-local`, "10.231.99.0/24 : jump n-" + shortID(next.ID) + "-masq"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("table after the takeover lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), shortID(old.ID)) {
		t.Errorf("the old network's chains or mappings are left:\n%s", out)
	}
	if err := f.remove(ctx, next); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("nft", "list", "table", "inet", f.table).Output()
	if strings.Contains(string(out), shortID(next.ID)) || strings.Contains(string(out), `"bttake0"`) {
		t.Errorf("the new network's rules are left after remove:\n%s", out)
	}
}
