package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-project/berth/internal/cli/format"
)

const networkFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeaders = map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}

func (c *CLI) networkCommand() *cobra.Command {
	n := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs, RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	n.AddCommand(c.networkCreateCommand(), c.networkListCommand(), c.networkInspectCommand(), c.networkRemoveCommand(),
		c.networkPruneCommand(), c.networkConnectCommand(), c.networkDisconnectCommand())
	return n
}

func (c *CLI) networkCreateCommand() *cobra.Command {
	var driver string
	var subnets, gateways, ranges, opts, labels []string
	var internal, ipv4, ipv6, attachable bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ipam, err := ipamConfig(subnets, gateways, ranges)
			if err != nil {
				return err
			}
			o := client.NetworkCreateOptions{Driver: driver, Internal: internal, Attachable: attachable,
				Options: keyValues(opts), Labels: keyValues(labels)}
			if len(ipam) > 0 {
				o.IPAM = &network.IPAM{Driver: "default", Config: ipam}
			}
			if cmd.Flags().Changed("ipv4") {
				o.EnableIPv4 = &ipv4
			}
			if cmd.Flags().Changed("ipv6") {
				o.EnableIPv6 = &ipv6
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			for _, w := range res.Warning {
				fmt.Fprintln(c.Err, "WARNING:", w)
			}
			fmt.Fprintln(c.Out, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.StringArrayVar(&subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	f.StringArrayVar(&gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	f.StringArrayVar(&ranges, "ip-range", nil, "Allocate container ip from a sub-range")
	f.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	f.StringArrayVar(&labels, "label", nil, "Set metadata on a network")
	f.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	return cmd
}

// keyValues reads repeated key=value flags; a key alone has an empty
// value.
func keyValues(kvs []string) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// ipamConfig pairs --gateway and --ip-range with the --subnet holding
// each, as docker's network create does.
func ipamConfig(subnets, gateways, ranges []string) ([]network.IPAMConfig, error) {
	var out []network.IPAMConfig
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet %s: %w", s, err)
		}
		out = append(out, network.IPAMConfig{Subnet: p})
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid gateway %s: %w", g, err)
		}
		i := subnetOf(out, a)
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
		if out[i].Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", out[i].Gateway, g, out[i].Subnet)
		}
		out[i].Gateway = a
	}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid ip-range %s: %w", r, err)
		}
		i := subnetOf(out, p.Addr())
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		}
		if out[i].IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", out[i].IPRange, r, out[i].Subnet)
		}
		out[i].IPRange = p
	}
	return out, nil
}

func subnetOf(cfgs []network.IPAMConfig, a netip.Addr) int {
	for i, c := range cfgs {
		if c.Subnet.Contains(a) {
			return i
		}
	}
	return -1
}

func (c *CLI) networkListCommand() *cobra.Command {
	var quiet, noTrunc bool
	var filters []string
	var tmpl string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			def := networkFormat
			if quiet {
				tmpl, def = "{{.ID}}", "{{.ID}}"
			}
			t, table, err := format.Parse(tmpl, def)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: f})
			if err != nil {
				return err
			}
			var rows []map[string]any
			for _, n := range res.Items {
				id := n.ID
				if !noTrunc && len(id) > 12 {
					id = id[:12]
				}
				var labels []string
				for _, k := range sortedKeys(n.Labels) {
					labels = append(labels, k+"="+n.Labels[k])
				}
				rows = append(rows, map[string]any{"ID": id, "Name": n.Name, "Driver": n.Driver, "Scope": n.Scope,
					"IPv4": fmt.Sprint(n.EnableIPv4), "IPv6": fmt.Sprint(n.EnableIPv6), "Internal": fmt.Sprint(n.Internal),
					"Labels": strings.Join(labels, ","), "CreatedAt": n.Created.String()})
			}
			return format.Write(c.Out, t, table, networkHeaders, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"driver=bridge\")")
	cmd.Flags().StringVar(&tmpl, "format", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) networkInspectCommand() *cobra.Command {
	var tmpl string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := inspectTemplate(tmpl)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			var raws []json.RawMessage
			var errs []string
			for _, n := range args {
				res, err := api.NetworkInspect(cmd.Context(), n, client.NetworkInspectOptions{Verbose: verbose})
				if err != nil {
					if !isNotFound(err) {
						return err
					}
					errs = append(errs, "Error: No such network: "+n)
					continue
				}
				raws = append(raws, res.Raw)
			}
			if err := c.printInspect(t, raws); err != nil {
				return err
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func (c *CLI) networkRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(n string) error {
				_, err := api.NetworkRemove(cmd.Context(), n, client.NetworkRemoveOptions{})
				if err != nil && force && isNotFound(err) {
					return nil
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *CLI) networkPruneCommand() *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			if !force && !c.confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?") {
				return nil
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.Out, "Deleted Networks:")
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(c.Out, n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func (c *CLI) networkConnectCommand() *cobra.Command {
	var aliases, links, driverOpts []string
	var ip, ip6 string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			es := &network.EndpointSettings{Aliases: aliases, Links: links}
			if len(driverOpts) > 0 {
				es.DriverOpts = keyValues(driverOpts)
			}
			if ip != "" || ip6 != "" {
				es.IPAMConfig = &network.EndpointIPAMConfig{}
				for _, a := range []struct {
					s    string
					to   *netip.Addr
					flag string
				}{{ip, &es.IPAMConfig.IPv4Address, "ip"}, {ip6, &es.IPAMConfig.IPv6Address, "ip6"}} {
					if a.s == "" {
						continue
					}
					addr, err := netip.ParseAddr(a.s)
					if err != nil {
						return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", a.s, a.flag, err)
					}
					*a.to = addr
				}
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: es})
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	f.StringArrayVar(&links, "link", nil, "Add link to another container")
	f.StringArrayVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	f.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	f.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	return cmd
}

func (c *CLI) networkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
