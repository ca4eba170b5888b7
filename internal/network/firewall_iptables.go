package network

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// iptFirewall is the backend for hosts without nft: iptables and
// ip6tables, with berth's rules in chains of its own jumped to from the
// built-in ones (docker's layout):
//
//	filter FORWARD     -> BERTH-FORWARD     per network: isolation (via BERTH-ISOLATION), internal, ICC
//	filter INPUT       -> BERTH-INPUT       per internal network: the host's addresses but the gateway
//	nat    POSTROUTING -> BERTH-POSTROUTING per network: masquerade
//
// Each rule carries the comment "berth:<short id>", by which remove finds
// a network's rules.
type iptFirewall struct{}

func (f *iptFirewall) backend() string { return backendIPTables }

// ipt runs iptables (or ip6tables for v6) with the xtables lock waited for.
func ipt(ctx context.Context, v6 bool, args ...string) (string, error) {
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-w"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// chainsReady creates berth's chains and their jumps once per family.
func (f *iptFirewall) chainsReady(ctx context.Context, v6 bool) error {
	for _, c := range []struct{ table, chain, from string }{
		{"filter", "BERTH-FORWARD", "FORWARD"},
		{"filter", "BERTH-ISOLATION", ""},
		{"filter", "BERTH-INPUT", "INPUT"},
		{"nat", "BERTH-POSTROUTING", "POSTROUTING"},
	} {
		if _, err := ipt(ctx, v6, "-t", c.table, "-S", c.chain); err != nil {
			if _, err := ipt(ctx, v6, "-t", c.table, "-N", c.chain); err != nil {
				return err
			}
		}
		if c.from == "" {
			continue
		}
		if _, err := ipt(ctx, v6, "-t", c.table, "-C", c.from, "-j", c.chain); err != nil {
			if _, err := ipt(ctx, v6, "-t", c.table, "-I", c.from, "-j", c.chain); err != nil {
				return err
			}
		}
	}
	return nil
}

// families are the address families the network has (v6 true for IPv6).
func families(n netRules) []bool {
	var fs []bool
	for _, s := range n.Subnets {
		if !slices.Contains(fs, s.Addr().Is6()) {
			fs = append(fs, s.Addr().Is6())
		}
	}
	return fs
}

func (f *iptFirewall) ensure(ctx context.Context, n netRules) error {
	if err := f.remove(ctx, n); err != nil {
		return err
	}
	tag := []string{"-m", "comment", "--comment", "berth:" + shortID(n.ID)}
	br := n.Bridge
	for _, v6 := range families(n) {
		if err := f.chainsReady(ctx, v6); err != nil {
			return err
		}
		var rules [][]string
		add := func(table, chain string, spec ...string) {
			rules = append(rules, append(append([]string{"-t", table, "-A", chain}, spec...), tag...))
		}
		if n.Internal {
			add("filter", "BERTH-FORWARD", "-i", br, "!", "-o", br, "-j", "DROP")
			add("filter", "BERTH-FORWARD", "-o", br, "!", "-i", br, "-j", "DROP")
			var gw string
			for _, g := range n.Gateways {
				if g.Is6() == v6 {
					gw = g.String()
				}
			}
			if gw != "" {
				add("filter", "BERTH-INPUT", "-i", br, "!", "-d", gw, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DROP")
			}
		} else {
			add("filter", "BERTH-FORWARD", "-i", br, "!", "-o", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
			add("filter", "BERTH-FORWARD", "-o", br, "!", "-i", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
			add("filter", "BERTH-FORWARD", "-i", br, "!", "-o", br, "-j", "BERTH-ISOLATION")
			add("filter", "BERTH-ISOLATION", "-o", br, "-j", "DROP")
		}
		if !n.ICC {
			add("filter", "BERTH-FORWARD", "-i", br, "-o", br, "-j", "DROP")
		}
		if n.Masquerade {
			for _, s := range n.Subnets {
				if s.Addr().Is6() == v6 {
					add("nat", "BERTH-POSTROUTING", "-s", s.String(), "!", "-o", br, "-j", "MASQUERADE")
				}
			}
		}
		for _, r := range rules {
			if _, err := ipt(ctx, v6, r...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *iptFirewall) remove(ctx context.Context, n netRules) error {
	comment := "berth:" + shortID(n.ID)
	for _, v6 := range []bool{false, true} {
		for _, tc := range [][2]string{{"filter", "BERTH-FORWARD"}, {"filter", "BERTH-ISOLATION"}, {"filter", "BERTH-INPUT"}, {"nat", "BERTH-POSTROUTING"}} {
			out, err := ipt(ctx, v6, "-t", tc[0], "-S", tc[1])
			if err != nil {
				continue // no chain: no rules
			}
			for _, line := range strings.Split(out, "\n") {
				if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, comment) {
					continue
				}
				args, err := splitRule(line)
				if err != nil {
					return err
				}
				args[0] = "-D"
				if _, err := ipt(ctx, v6, append([]string{"-t", tc[0]}, args...)...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// splitRule splits a rule as `iptables -S` prints it into arguments,
// honouring its double quotes.
func splitRule(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote, have = !inQuote, true
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote in iptables rule %q", line)
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}

var iptComment = regexp.MustCompile(`berth:([0-9a-f]+)`)

func (f *iptFirewall) networks(ctx context.Context) ([]string, error) {
	var ids []string
	for _, v6 := range []bool{false, true} {
		for _, tc := range [][2]string{{"filter", "BERTH-FORWARD"}, {"filter", "BERTH-ISOLATION"}, {"filter", "BERTH-INPUT"}, {"nat", "BERTH-POSTROUTING"}} {
			out, err := ipt(ctx, v6, "-t", tc[0], "-S", tc[1])
			if err != nil {
				continue
			}
			for _, m := range iptComment.FindAllStringSubmatch(out, -1) {
				if !slices.Contains(ids, m[1]) {
					ids = append(ids, m[1])
				}
			}
		}
	}
	return ids, nil
}

func (f *iptFirewall) prune(ctx context.Context) error {
	ids, err := f.networks(ctx)
	if err != nil || len(ids) > 0 {
		return err
	}
	for _, v6 := range []bool{false, true} {
		for _, c := range []struct{ table, chain, from string }{
			{"filter", "BERTH-FORWARD", "FORWARD"},
			{"filter", "BERTH-INPUT", "INPUT"},
			{"nat", "BERTH-POSTROUTING", "POSTROUTING"},
			{"filter", "BERTH-ISOLATION", ""},
		} {
			if _, err := ipt(ctx, v6, "-t", c.table, "-S", c.chain); err != nil {
				continue // no chain
			}
			if c.from != "" {
				for {
					if _, err := ipt(ctx, v6, "-t", c.table, "-D", c.from, "-j", c.chain); err != nil {
						break
					}
				}
			}
			if _, err := ipt(ctx, v6, "-t", c.table, "-F", c.chain); err != nil {
				return err
			}
			if _, err := ipt(ctx, v6, "-t", c.table, "-X", c.chain); err != nil {
				return err
			}
		}
	}
	return nil
}
