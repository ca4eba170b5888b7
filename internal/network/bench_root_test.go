package network

import (
	"context"
	"testing"
)

// BenchmarkAttachDetach is one container's networking on the default
// bridge: attach (veth, address, route, loopback) and detach, the cost
// `run --rm` adds over --network none.
func BenchmarkAttachDetach(b *testing.B) {
	requireRoot(b)
	m, _ := testManager(b, "")
	ns := testNetNS(b)
	ctx := context.Background()
	for b.Loop() {
		id := "bench" + randHex(59)
		if _, err := m.Attach(ctx, "bridge", id, ns, AttachOptions{Name: "bench"}); err != nil {
			b.Fatal(err)
		}
		if err := m.DetachAll(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
