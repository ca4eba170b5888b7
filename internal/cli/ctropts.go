package cli

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/strslice"
	"github.com/spf13/pflag"
)

// ctrOpts are the flags of docker run and docker create.
type ctrOpts struct {
	name, platform, pull                        string
	interactive, tty, rm, init, readOnly        bool
	privileged, noHealthcheck, publishAll       bool
	env, envFiles, labels, attach               []string
	workdir, user, entrypoint, hostname, domain string
	restart, stopSignal                         string
	stopTimeout                                 int
	tmpfs, volumes, mounts                      []string
	memory, memorySwap, memoryReservation       string
	shmSize                                     string
	cpus                                        float64
	cpuShares                                   int64
	cpusetCPUs, cpusetMems                      string
	pidsLimit                                   int64
	ulimits, capAdd, capDrop, securityOpt       []string
	devices, sysctls, dns, dnsSearch, dnsOpt    []string
	addHosts, groupAdd, publish, expose         []string
	oomScoreAdj                                 int
	oomKillDisable                              bool
	healthCmd                                   string
	healthInterval, healthTimeout               time.Duration
	healthStartPeriod, healthStartInterval      time.Duration
	healthRetries                               int
	runtime, network, ipc, pid, uts, cgroupns   string
	ip, ip6, mac                                string
	aliases                                     []string
	logDriver                                   string
	logOpts                                     []string
}

// addFlags declares docker's run/create flags on fs.
func (o *ctrOpts) addFlags(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)
	// -h is --hostname here, as in docker: help has no shorthand.
	fs.Bool("help", false, "Print usage")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVar(&o.envFiles, "env-file", nil, "Read in a file of environment variables")
	fs.StringArrayVarP(&o.labels, "label", "l", nil, "Set meta data on a container")
	fs.StringArrayVarP(&o.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domain, "domainname", "", "Container NIS domain name")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.StringArrayVar(&o.tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	fs.StringArrayVarP(&o.volumes, "volume", "v", nil, "Bind mount a volume")
	fs.StringArrayVar(&o.mounts, "mount", nil, "Attach a filesystem mount to the container")
	fs.StringVarP(&o.memory, "memory", "m", "", "Memory limit")
	fs.StringVar(&o.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&o.memoryReservation, "memory-reservation", "", "Memory soft limit")
	fs.StringVar(&o.shmSize, "shm-size", "", "Size of /dev/shm")
	fs.Float64Var(&o.cpus, "cpus", 0, "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.StringArrayVar(&o.ulimits, "ulimit", nil, "Ulimit options")
	fs.StringArrayVar(&o.capAdd, "cap-add", nil, "Add Linux capabilities")
	fs.StringArrayVar(&o.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	fs.StringArrayVar(&o.securityOpt, "security-opt", nil, "Security Options")
	fs.StringArrayVar(&o.devices, "device", nil, "Add a host device to the container")
	fs.StringArrayVar(&o.sysctls, "sysctl", nil, "Sysctl options")
	fs.StringArrayVar(&o.dns, "dns", nil, "Set custom DNS servers")
	fs.StringArrayVar(&o.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	fs.StringArrayVar(&o.dnsOpt, "dns-option", nil, "Set DNS options")
	fs.StringArrayVar(&o.addHosts, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&o.groupAdd, "group-add", nil, "Add additional groups to join")
	fs.StringArrayVarP(&o.publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.StringArrayVar(&o.expose, "expose", nil, "Expose a port or a range of ports")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.StringVar(&o.network, "network", "", "Connect a container to a network")
	fs.StringVar(&o.network, "net", "", "Connect a container to a network")
	fs.StringArrayVar(&o.aliases, "network-alias", nil, "Add network-scoped alias for the container")
	fs.StringArrayVar(&o.aliases, "net-alias", nil, "Add network-scoped alias for the container")
	fs.StringVar(&o.ip, "ip", "", `IPv4 address (e.g., "172.30.100.104")`)
	fs.StringVar(&o.ip6, "ip6", "", `IPv6 address (e.g., "2001:db8::33")`)
	fs.StringVar(&o.mac, "mac-address", "", `Container MAC address (e.g., "92:d0:c6:0a:29:33")`)
	fs.MarkHidden("net")
	fs.MarkHidden("net-alias")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`)
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fs.StringArrayVar(&o.logOpts, "log-opt", nil, "Log driver options")
}

// invalid is docker's 125 for a bad flag value; createContainer adds
// the line naming the command's help.
func invalid(format string, args ...any) error {
	return &StatusError{Status: 125, Message: fmt.Sprintf("invalid argument: "+format, args...), help: true}
}

// parse builds the API request from the flags, the image and the
// command; stdin tells whether the container gets stdin attached.
func (o *ctrOpts) parse(fs *pflag.FlagSet, img string, cmd []string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image:        img,
		Hostname:     o.hostname,
		Domainname:   o.domain,
		User:         o.user,
		WorkingDir:   o.workdir,
		Tty:          o.tty,
		OpenStdin:    o.interactive,
		AttachStdin:  o.interactive,
		StopSignal:   o.stopSignal,
		Labels:       map[string]string{},
		Volumes:      map[string]struct{}{},
		ExposedPorts: network.PortSet{},
	}
	if len(cmd) > 0 {
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if fs.Changed("entrypoint") {
		cfg.Entrypoint = strslice.StrSlice{o.entrypoint}
		if o.entrypoint == "" {
			cfg.Entrypoint = strslice.StrSlice{""}
		}
	}
	if fs.Changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	// -a: which streams; without it, stdout and stderr (and stdin with -i).
	if len(o.attach) > 0 {
		for _, a := range o.attach {
			switch strings.ToLower(a) {
			case "stdin":
				cfg.AttachStdin = true
			case "stdout":
				cfg.AttachStdout = true
			case "stderr":
				cfg.AttachStderr = true
			default:
				return nil, nil, nil, invalid("valid streams are STDIN, STDOUT and STDERR")
			}
		}
	} else {
		cfg.AttachStdout, cfg.AttachStderr = true, true
	}
	if cfg.AttachStdin {
		cfg.StdinOnce = true
	}

	env, err := o.environment()
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Env = env
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}

	hc := &container.HostConfig{
		AutoRemove:      o.rm,
		ReadonlyRootfs:  o.readOnly,
		Privileged:      o.privileged,
		CapAdd:          o.capAdd,
		CapDrop:         o.capDrop,
		SecurityOpt:     nil,
		OomScoreAdj:     o.oomScoreAdj,
		Runtime:         o.runtime,
		NetworkMode:     container.NetworkMode(o.network),
		IpcMode:         container.IpcMode(o.ipc),
		PidMode:         container.PidMode(o.pid),
		UTSMode:         container.UTSMode(o.uts),
		CgroupnsMode:    container.CgroupnsMode(o.cgroupns),
		GroupAdd:        o.groupAdd,
		DNSSearch:       o.dnsSearch,
		DNSOptions:      o.dnsOpt,
		ExtraHosts:      o.addHosts,
		PublishAllPorts: o.publishAll,
		Tmpfs:           map[string]string{},
		Sysctls:         map[string]string{},
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: map[string]string{}},
	}
	if fs.Changed("init") {
		v := o.init
		hc.Init = &v
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	for _, d := range o.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, nil, nil, invalid("%s is not an ip address", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	for _, lo := range o.logOpts {
		k, v, ok := strings.Cut(lo, "=")
		if !ok {
			return nil, nil, nil, invalid("invalid key value pair format in log options: %s", lo)
		}
		hc.LogConfig.Config[k] = v
	}
	if hc.RestartPolicy, err = parseRestart(o.restart); err != nil {
		return nil, nil, nil, err
	}
	if o.rm && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return nil, nil, nil, &StatusError{Status: 125, Message: "Conflicting options: cannot specify both --restart and --rm"}
	}
	for _, s := range o.securityOpt {
		opt, err := securityOpt(s)
		if err != nil {
			return nil, nil, nil, err
		}
		hc.SecurityOpt = append(hc.SecurityOpt, opt)
	}
	for _, t := range o.tmpfs {
		dest, opts, _ := strings.Cut(t, ":")
		hc.Tmpfs[dest] = opts
	}
	for _, s := range o.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, nil, nil, invalid("%s is not a valid sysctl value", s)
		}
		hc.Sysctls[k] = v
	}
	for _, v := range o.volumes {
		if strings.Contains(v, ":") {
			hc.Binds = append(hc.Binds, v)
		} else {
			cfg.Volumes[v] = struct{}{}
		}
	}
	for _, m := range o.mounts {
		mt, err := parseMount(m)
		if err != nil {
			return nil, nil, nil, err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	if err := o.resources(&hc.Resources); err != nil {
		return nil, nil, nil, err
	}
	if hc.ShmSize, err = bytesFlag("shm-size", o.shmSize); err != nil {
		return nil, nil, nil, err
	}
	if err := o.ports(cfg, hc); err != nil {
		return nil, nil, nil, err
	}
	if cfg.Healthcheck, err = o.health(fs); err != nil {
		return nil, nil, nil, err
	}
	nc, err := o.endpoint(hc.NetworkMode)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, hc, nc, nil
}

// endpoint is the endpoint settings of the container's network: the
// network named, and --ip, --ip6, --mac-address and --network-alias for
// it. The daemon refuses them where docker's does (the default bridge
// takes no alias or fixed address, host and container: modes none).
func (o *ctrOpts) endpoint(mode container.NetworkMode) (*network.NetworkingConfig, error) {
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	es := &network.EndpointSettings{Aliases: o.aliases}
	for _, a := range []struct {
		s, flag string
		v4      bool
	}{{o.ip, "ip", true}, {o.ip6, "ip6", false}} {
		if a.s == "" {
			continue
		}
		addr, err := netip.ParseAddr(a.s)
		if err != nil || addr.Is4() != a.v4 || addr.Zone() != "" {
			return nil, invalid("%q is not a valid IPv%s address for --%s", a.s, map[bool]string{true: "4", false: "6"}[a.v4], a.flag)
		}
		if es.IPAMConfig == nil {
			es.IPAMConfig = &network.EndpointIPAMConfig{}
		}
		if a.v4 {
			es.IPAMConfig.IPv4Address = addr
		} else {
			es.IPAMConfig.IPv6Address = addr
		}
	}
	if o.mac != "" {
		hw, err := net.ParseMAC(o.mac)
		if err != nil || len(hw) != 6 {
			return nil, invalid("%s is not a valid mac address", o.mac)
		}
		es.MacAddress = network.HardwareAddr(hw)
	}
	n := string(mode)
	custom := len(es.Aliases) > 0 || es.IPAMConfig != nil || len(es.MacAddress) > 0
	switch {
	case custom:
		if n == "" {
			n = "default"
		}
		nc.EndpointsConfig[n] = es
	case n != "default" && n != "" && !mode.IsContainer():
		nc.EndpointsConfig[n] = &network.EndpointSettings{}
	}
	return nc, nil
}

// environment is -e and --env-file: KEY=VALUE, or KEY alone for the
// value in berth's own environment (left out when unset, as docker does).
func (o *ctrOpts) environment() ([]string, error) {
	var out []string
	add := func(kv string) {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := os.LookupEnv(kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	for _, f := range o.envFiles {
		file, err := os.Open(f)
		if err != nil {
			return nil, &StatusError{Status: 125, Message: err.Error()}
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := strings.TrimLeft(sc.Text(), " \t")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k, _, _ := strings.Cut(line, "="); strings.ContainsAny(k, " \t") {
				file.Close()
				return nil, &StatusError{Status: 125, Message: fmt.Sprintf("variable '%s' contains whitespaces", k)}
			}
			add(line)
		}
		file.Close()
		if err := sc.Err(); err != nil {
			return nil, &StatusError{Status: 125, Message: fmt.Sprintf("%s: %v", f, err)}
		}
	}
	for _, e := range o.env {
		if strings.HasPrefix(e, "=") {
			return nil, invalid("invalid environment variable: %s", e)
		}
		add(e)
	}
	return out, nil
}

func bytesFlag(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, invalid("%q for %s: %v", v, "--"+name, err)
	}
	return n, nil
}

// resources are the cgroup limits.
func (o *ctrOpts) resources(r *container.Resources) error {
	var err error
	if r.Memory, err = bytesFlag("memory", o.memory); err != nil {
		return err
	}
	if r.MemoryReservation, err = bytesFlag("memory-reservation", o.memoryReservation); err != nil {
		return err
	}
	if o.memorySwap == "-1" {
		r.MemorySwap = -1
	} else if r.MemorySwap, err = bytesFlag("memory-swap", o.memorySwap); err != nil {
		return err
	}
	if o.cpus < 0 {
		return invalid("%v for --cpus: range of CPUs must be positive", o.cpus)
	}
	r.NanoCPUs = int64(o.cpus * 1e9)
	r.CPUShares = o.cpuShares
	r.CpusetCpus, r.CpusetMems = o.cpusetCPUs, o.cpusetMems
	if o.pidsLimit != 0 {
		n := o.pidsLimit
		r.PidsLimit = &n
	}
	if o.oomKillDisable {
		v := true
		r.OomKillDisable = &v
	}
	for _, u := range o.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return invalid("%q for --ulimit: %v", u, err)
		}
		r.Ulimits = append(r.Ulimits, ul)
	}
	for _, d := range o.devices {
		dm, err := parseDevice(d)
		if err != nil {
			return err
		}
		r.Devices = append(r.Devices, dm)
	}
	return nil
}

// parseDevice reads --device host[:container][:permissions].
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	dm := container.DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		dm.PathInContainer = parts[0]
	case 2:
		if validPerms(parts[1]) {
			dm.PathInContainer, dm.CgroupPermissions = parts[0], parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		if !validPerms(parts[2]) {
			return dm, invalid("invalid device mode: %s", parts[2])
		}
		dm.PathInContainer, dm.CgroupPermissions = parts[1], parts[2]
	default:
		return dm, invalid("invalid device specification: %s", s)
	}
	if dm.PathOnHost == "" {
		return dm, invalid("invalid device specification: %s", s)
	}
	return dm, nil
}

func validPerms(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

// parseRestart reads --restart no|always|unless-stopped|on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasCount {
			return p, invalid("maximum retry count cannot be used with restart policy '%s'", name)
		}
	case container.RestartPolicyOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, invalid("maximum retry count must be an integer")
			}
			p.MaximumRetryCount = n
		}
	default:
		return p, invalid("invalid restart policy '%s'", name)
	}
	return p, nil
}

// securityOpt passes --security-opt through, reading a seccomp profile
// file into the option as docker's CLI does (berthd never opens the
// client's files).
func securityOpt(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	if ok && k == "seccomp" && v != "unconfined" && v != "builtin" && !strings.HasPrefix(strings.TrimSpace(v), "{") {
		b, err := os.ReadFile(v)
		if err != nil {
			return "", invalid("opening seccomp profile (%s) failed: %v", v, err)
		}
		return "seccomp=" + string(b), nil
	}
	return s, nil
}

// parseMount reads --mount's comma-separated key=value list.
func parseMount(s string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	for _, field := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(field, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		boolVal := func() (bool, error) {
			if !hasValue {
				return true, nil
			}
			switch strings.ToLower(v) {
			case "1", "true":
				return true, nil
			case "0", "false":
				return false, nil
			}
			return false, invalid("invalid value for %s: %s", k, v)
		}
		switch k {
		case "type":
			m.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			b, err := boolVal()
			if err != nil {
				return m, err
			}
			m.ReadOnly = b
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(strings.ToLower(v))
		case "volume-nocopy", "volume-subpath", "volume-driver", "volume-label", "volume-opt":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			switch k {
			case "volume-nocopy":
				b, err := boolVal()
				if err != nil {
					return m, err
				}
				m.VolumeOptions.NoCopy = b
			case "volume-subpath":
				m.VolumeOptions.Subpath = v
			case "volume-driver":
				m.VolumeOptions.DriverConfig = &mount.Driver{Name: v}
			case "volume-label", "volume-opt":
				lk, lv, _ := strings.Cut(v, "=")
				if k == "volume-label" {
					if m.VolumeOptions.Labels == nil {
						m.VolumeOptions.Labels = map[string]string{}
					}
					m.VolumeOptions.Labels[lk] = lv
				} else {
					if m.VolumeOptions.DriverConfig == nil {
						m.VolumeOptions.DriverConfig = &mount.Driver{}
					}
					if m.VolumeOptions.DriverConfig.Options == nil {
						m.VolumeOptions.DriverConfig.Options = map[string]string{}
					}
					m.VolumeOptions.DriverConfig.Options[lk] = lv
				}
			}
		case "tmpfs-size", "tmpfs-mode":
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			if k == "tmpfs-size" {
				n, err := units.RAMInBytes(v)
				if err != nil {
					return m, invalid("invalid value for %s: %s", k, v)
				}
				m.TmpfsOptions.SizeBytes = n
			} else {
				n, err := strconv.ParseUint(v, 8, 32)
				if err != nil {
					return m, invalid("invalid value for %s: %s", k, v)
				}
				m.TmpfsOptions.Mode = os.FileMode(n)
			}
		default:
			return m, invalid("unexpected key '%s' in '%s'", k, field)
		}
	}
	if m.Target == "" {
		return m, invalid("target is required")
	}
	return m, nil
}

// ports reads -p [ip:][hostPort:]containerPort[/proto] and --expose; the
// network layer publishes them.
func (o *ctrOpts) ports(cfg *container.Config, hc *container.HostConfig) error {
	for _, e := range o.expose {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return invalid("invalid range format for --expose: %s, error: %v", e, err)
		}
		for p := range pr.All() {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, spec := range o.publish {
		proto := ""
		rest := spec
		if i := strings.LastIndex(spec, "/"); i >= 0 {
			rest, proto = spec[:i], spec[i:]
		}
		var ip, hostPort, ctrPort string
		if strings.HasPrefix(rest, "[") {
			// [v6]:host:ctr
			end := strings.Index(rest, "]")
			if end < 0 {
				return invalid("invalid publish spec %q", spec)
			}
			ip, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		}
		parts := strings.Split(rest, ":")
		switch {
		case ip != "" && len(parts) == 2:
			hostPort, ctrPort = parts[0], parts[1]
		case ip == "" && len(parts) == 1:
			ctrPort = parts[0]
		case ip == "" && len(parts) == 2:
			hostPort, ctrPort = parts[0], parts[1]
		case ip == "" && len(parts) == 3:
			ip, hostPort, ctrPort = parts[0], parts[1], parts[2]
		default:
			return invalid("invalid publish spec %q", spec)
		}
		pr, err := network.ParsePortRange(ctrPort + proto)
		if err != nil {
			return invalid("invalid containerPort: %s", ctrPort)
		}
		var addr netip.Addr
		if ip != "" {
			if addr, err = netip.ParseAddr(ip); err != nil {
				return invalid("invalid IP address: %s", ip)
			}
		}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for p := range pr.All() {
			cfg.ExposedPorts[p] = struct{}{}
			hc.PortBindings[p] = append(hc.PortBindings[p], network.PortBinding{HostIP: addr, HostPort: hostPort})
		}
	}
	return nil
}

// health reads the --health-* flags.
func (o *ctrOpts) health(fs *pflag.FlagSet) (*container.HealthConfig, error) {
	if o.noHealthcheck {
		if o.healthCmd != "" {
			return nil, &StatusError{Status: 125, Message: "--no-healthcheck conflicts with --health-* options"}
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	any := false
	for _, f := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries"} {
		any = any || fs.Changed(f)
	}
	if !any {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{"interval": o.healthInterval, "timeout": o.healthTimeout, "start-period": o.healthStartPeriod, "start-interval": o.healthStartInterval} {
		if d < 0 {
			return nil, &StatusError{Status: 125, Message: "--health-" + name + " cannot be negative"}
		}
	}
	if o.healthRetries < 0 {
		return nil, &StatusError{Status: 125, Message: "--health-retries cannot be negative"}
	}
	h := &container.HealthConfig{Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStartPeriod,
		StartInterval: o.healthStartInterval, Retries: o.healthRetries}
	if o.healthCmd != "" {
		h.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	return h, nil
}
