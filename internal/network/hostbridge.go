package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// unreachableMetric is the metric of the unreachable route berth adds for
// each subnet: above the kernel's link route of the bridge (0 for IPv4,
// 256 for IPv6), so the bridge's route wins while the bridge has its
// address and the unreachable route catches every packet for the subnet
// when it does not. Without it a packet for a container address would
// follow the host's default route out of the machine.
const unreachableMetric = 4096

// ipBatch runs iproute2 commands in one process (`ip -batch -`). With
// force, errors (a route already gone) do not stop the rest.
func ipBatch(ctx context.Context, force bool, cmds []string) error {
	if len(cmds) == 0 {
		return nil
	}
	args := []string{"-batch", "-"}
	if force {
		args = append([]string{"-force"}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && !force {
		return fmt.Errorf("ip -batch (%s): %w: %s", strings.Join(cmds, "; "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// linkKind is the kind of the host link name ("bridge", "veth", "" for a
// plain device); exists is false when there is no such link.
func linkKind(ctx context.Context, name string) (kind string, exists bool, err error) {
	out, err := exec.CommandContext(ctx, "ip", "-j", "-d", "link", "show", "dev", name).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && bytes.Contains(ee.Stderr, []byte("does not exist")) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("ip link show %s: %w", name, commandError(err))
	}
	var links []struct {
		LinkInfo struct {
			InfoKind string `json:"info_kind"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return "", false, fmt.Errorf("ip link show %s: unexpected output %q", name, out)
	}
	return links[0].LinkInfo.InfoKind, true, nil
}

// realizeBridge makes the network's host side exist: an unreachable route
// for each subnet first, then the bridge, its gateway addresses, and only
// then the bridge up, so that no packet for the subnet can be routed
// anywhere but the bridge or nowhere. Idempotent.
func realizeBridge(ctx context.Context, r *record) error {
	kind, exists, err := linkKind(ctx, r.Bridge)
	if err != nil {
		return err
	}
	if exists && kind != "bridge" {
		return conflictf("host interface %s exists and is not a bridge (%q): choose another com.docker.network.bridge.name", r.Bridge, kind)
	}
	var cmds []string
	for _, s := range r.subnets() {
		cmds = append(cmds, fmt.Sprintf("route replace unreachable %s metric %d", s, unreachableMetric))
	}
	if !exists {
		cmds = append(cmds, fmt.Sprintf("link add name %s type bridge", r.Bridge))
	}
	if r.MTU > 0 {
		cmds = append(cmds, fmt.Sprintf("link set dev %s mtu %d", r.Bridge, r.MTU))
	}
	for _, c := range r.IPAM.Config {
		if !c.Gateway.IsValid() || !c.Subnet.IsValid() {
			continue
		}
		extra := ""
		if c.Gateway.Is6() {
			// The gateway must answer at once; duplicate address
			// detection would hold it tentative for a second.
			extra = " nodad"
		}
		cmds = append(cmds, fmt.Sprintf("address replace %s/%d dev %s%s", c.Gateway, c.Subnet.Bits(), r.Bridge, extra))
	}
	cmds = append(cmds, fmt.Sprintf("link set dev %s up", r.Bridge))
	return ipBatch(ctx, false, cmds)
}

// unrealizeBridge removes the bridge, then the unreachable routes: the
// reverse order, so the subnet is never routed out. Missing pieces are
// no error.
func unrealizeBridge(ctx context.Context, r *record) error {
	_, exists, err := linkKind(ctx, r.Bridge)
	if err != nil {
		return err
	}
	if exists {
		if err := ipBatch(ctx, false, []string{"link del dev " + r.Bridge}); err != nil {
			return err
		}
	}
	var cmds []string
	for _, s := range r.subnets() {
		cmds = append(cmds, fmt.Sprintf("route del unreachable %s metric %d", s, unreachableMetric))
	}
	return ipBatch(ctx, true, cmds)
}
