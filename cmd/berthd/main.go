// Command berthd is berth's engine daemon: it serves the Docker Engine API
// on a unix socket, with dockerd's flags.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Set at link time (-X main.version=...).
var (
	version   = "dev"
	gitCommit = ""
	buildTime = ""
)

func main() {
	var opts options
	cmd := &cobra.Command{
		Use:           "berthd [OPTIONS]",
		Short:         "berth's engine: the Docker Engine API on a unix socket",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(opts)
		},
	}
	cmd.SetVersionTemplate("berthd version {{.Version}}\n")
	f := cmd.Flags()
	f.StringVar(&opts.dataRoot, "data-root", "/var/lib/berth", "Root directory of persistent state (images)")
	f.StringVar(&opts.execRoot, "exec-root", "/run/berth", "Root directory of run-time state (lock, pid file, socket, log)")
	f.StringArrayVarP(&opts.hosts, "host", "H", nil, "Daemon socket(s) to listen on (unix:///path; default unix:///run/berth/berthd.sock)")
	f.StringArrayVar(&opts.mirrors, "registry-mirror", nil, "Registry mirror for docker.io (repeatable)")
	f.StringArrayVar(&opts.insecure, "insecure-registry", nil, "Registry (host[:port] or CIDR) spoken to over plain HTTP or unverified TLS (repeatable)")
	f.StringVarP(&opts.storageDriver, "storage-driver", "s", "", `Snapshotter: "overlay" or "copy" (default: overlay where the kernel mounts it)`)
	f.StringVarP(&opts.logLevel, "log-level", "l", "info", `Log level: "debug", "info", "warn", "error"`)
	f.BoolVarP(&opts.debug, "debug", "D", false, "Debug mode (log level debug)")
	f.StringVarP(&opts.pidfile, "pidfile", "p", "", "Path of the pid file (default <exec-root>/berthd.pid)")
	f.StringVarP(&opts.group, "group", "G", "", `Group owning the API socket (default "berth" where it exists, else root)`)
	f.StringVar(&opts.runtime, "runtime", "", "OCI runtime for containers: a path, or a name in PATH (default: berth-runtime beside berthd, else in PATH)")
	f.StringArrayVar(&opts.addRuntimes, "add-runtime", nil, "Runtime a container may ask for with --runtime NAME, as name=path (repeatable; runc, crun and berth-runtime are known by name)")
	f.StringArrayVar(&opts.execOpts, "exec-opt", nil, `Runtime execution option: native.cgroupdriver=cgroupfs|systemd (default: systemd where the host is cgroup v2 only with systemd as init)`)
	f.StringVar(&opts.cgroupParent, "cgroup-parent", "", `Parent cgroup of containers (default "/berth"; a slice such as "system.slice" with the systemd driver)`)
	f.StringVar(&opts.shim, "shim", "", "berth-shim binary (default: beside berthd, else in PATH)")
	f.StringVar(&opts.initPath, "init-path", "", "Init bound into containers run with --init (default: berth-init, docker-init or tini-static beside berthd or in PATH)")
	f.StringVar(&opts.bridge, "bridge", "berth0", "Host bridge of the default \"bridge\" network")
	f.StringVar(&opts.bip, "bip", "", "Subnet of the default bridge, as its gateway address and prefix length (e.g. 172.17.0.1/16; default: the bridge's present address, else the first free docker pool)")
	f.StringVar(&opts.firewall, "firewall-backend", "", `Host firewall for the networks' rules and published ports: "nftables" or "iptables" (default: nftables where nft works)`)
	f.IntVar(&opts.netPool, "network-pool", 2, "Network namespaces each network in use keeps attached ahead of need, for containers without published ports or a fixed address (0: none)")
	f.StringArrayVar(&opts.dns, "dns", nil, "DNS server (IP or IP:port) the embedded DNS of user-defined networks forwards other names to (repeatable; default: the host's resolv.conf's)")
	cmd.Flags().BoolP("version", "v", false, "Print version information and quit")

	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}
