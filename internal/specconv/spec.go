package specconv

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostnameMax is the kernel's HOST_NAME_MAX: sethostname(2) refuses more.
const hostnameMax = 64

// Spec returns the runtime spec of a container of img (nil for an image
// without config) with the user's options o on host h, and the warnings
// docker would give for settings it adjusted or dropped. It validates
// everything it is given: errors caused by img or o wrap ErrInvalid and
// name the option and the value.
//
// Preconditions: o.Rootfs is the container's root filesystem, mounted;
// h describes the host the container will run on (DetectHost).
func Spec(img *dockerspec.DockerOCIImage, o *Options, h *Host) (*specs.Spec, []string, error) {
	if img == nil {
		img = &dockerspec.DockerOCIImage{}
	}
	if o == nil || h == nil {
		return nil, nil, fmt.Errorf("specconv: options and host are required")
	}
	if img.OS != "" && img.OS != "linux" {
		return nil, nil, invalid("image operating system %q cannot be used on this platform", img.OS)
	}
	if err := checkID(o.ContainerID); err != nil {
		return nil, nil, err
	}
	if !path.IsAbs(o.Rootfs) {
		return nil, nil, invalid("rootfs %q is not an absolute path", o.Rootfs)
	}
	cfg := &img.Config.ImageConfig
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	sec, err := parseSecurityOpts(o.SecurityOpt, h)
	if err != nil {
		return nil, nil, err
	}
	argv, err := args(cfg, o)
	if err != nil {
		return nil, nil, err
	}
	withInit := o.Init && o.PID.Mode == NamespacePrivate
	if withInit {
		argv = append([]string{initPath, "--"}, argv...)
	}
	cwd, err := workingDir(cfg, o)
	if err != nil {
		return nil, nil, err
	}
	userSpec := cfg.User
	if o.User != "" {
		userSpec = o.User
	}
	user, err := resolveUser(o.Rootfs, userSpec, o.GroupAdd)
	if err != nil {
		return nil, nil, err
	}
	hostname, err := hostname(o, h)
	if err != nil {
		return nil, nil, err
	}
	env, err := environment(cfg, o, hostname, user.home)
	if err != nil {
		return nil, nil, err
	}
	capList, err := capabilities(o, h)
	if err != nil {
		return nil, nil, err
	}
	rl, err := rlimits(o.Ulimits, h)
	if err != nil {
		return nil, nil, err
	}
	oom, err := oomScoreAdj(o.OomScoreAdj)
	if err != nil {
		return nil, nil, err
	}
	nss, err := namespaces(o, h)
	if err != nil {
		return nil, nil, err
	}
	uidMaps, gidMaps, err := idMappings(o)
	if err != nil {
		return nil, nil, err
	}
	cgroupWritable := o.Privileged || userns(o)
	if sec.writableCgroups != nil {
		cgroupWritable = *sec.writableCgroups
	}
	mnts, rootProp, err := mounts(o, &mountPlan{
		readonlyRoot:   o.ReadonlyRootfs,
		sysWritable:    o.Privileged,
		cgroupWritable: cgroupWritable,
		init:           withInit,
	})
	if err != nil {
		return nil, nil, err
	}
	devs, devRules, err := devices(o, h)
	if err != nil {
		return nil, nil, err
	}
	res, err := resources(o, h, warn)
	if err != nil {
		return nil, nil, err
	}
	res.Devices = devRules
	sysctl, err := sysctls(o, h)
	if err != nil {
		return nil, nil, err
	}
	masked, readonly, err := systemPaths(o, sec, h)
	if err != nil {
		return nil, nil, err
	}
	cgPath, err := cgroupsPath(o, h)
	if err != nil {
		return nil, nil, err
	}
	noNewPrivs := h.NoNewPrivileges
	if sec.noNewPrivs != nil {
		noNewPrivs = *sec.noNewPrivs
	}

	version := specs.Version
	if h.OCIVersion != "" {
		version = h.OCIVersion
	}
	s := &specs.Spec{
		Version: version,
		Process: &specs.Process{
			Terminal: o.Tty,
			User:     user.user,
			Args:     argv,
			Env:      env,
			Cwd:      cwd,
			// Inheritable and ambient stay empty (CVE-2022-24769).
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  slices.Clone(capList),
				Effective: slices.Clone(capList),
				Permitted: slices.Clone(capList),
			},
			Rlimits:         rl,
			NoNewPrivileges: noNewPrivs,
			ApparmorProfile: apparmorProfile(sec, o, h),
			OOMScoreAdj:     oom,
			SelinuxLabel:    sec.selinuxProcess,
		},
		Root:   &specs.Root{Path: o.Rootfs, Readonly: o.ReadonlyRootfs},
		Mounts: mnts,
		Linux: &specs.Linux{
			UIDMappings:       uidMaps,
			GIDMappings:       gidMaps,
			Sysctl:            sysctl,
			Resources:         res,
			CgroupsPath:       cgPath,
			Namespaces:        nss,
			Devices:           devs,
			MaskedPaths:       masked,
			ReadonlyPaths:     readonly,
			MountLabel:        sec.selinuxMountLabel,
			RootfsPropagation: rootProp,
		},
	}
	if o.Tty && o.ConsoleSize != nil {
		s.Process.ConsoleSize = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
	}
	if o.UTS.Mode == NamespacePrivate {
		s.Hostname = hostname
		s.Domainname = o.Domainname
	}
	if len(o.Annotations) > 0 {
		s.Annotations = maps.Clone(o.Annotations)
	}
	// The seccomp profile depends on the capabilities set above.
	if s.Linux.Seccomp, err = seccompProfile(sec, o, s); err != nil {
		return nil, nil, err
	}
	return s, warnings, nil
}

// checkID accepts the IDs the engine makes (64 hex digits) and names a
// test may choose, but nothing that could walk a cgroup path.
func checkID(id string) error {
	if id == "" {
		return invalid("container ID is empty")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return invalid("container ID %q: only letters, digits, '_', '-' and '.' are allowed", id)
		}
	}
	if strings.Trim(id, ".") == "" {
		return invalid("container ID %q is not a name", id)
	}
	return nil
}

// hostname is --hostname, else the ID's first 12 characters, else the
// host's when the container shares the host's network or UTS namespace.
func hostname(o *Options, h *Host) (string, error) {
	if o.UTS.Mode != NamespacePrivate {
		if o.Hostname != "" {
			return "", invalid("conflicting options: hostname and the UTS mode")
		}
		if o.Domainname != "" {
			return "", invalid("conflicting options: domainname and the UTS mode")
		}
	}
	name := o.Hostname
	switch {
	case name != "":
	case o.UTS.Mode == NamespaceHost || o.Network.Mode == NamespaceHost:
		name = h.Hostname
	default:
		name = o.ContainerID
		if len(name) > 12 {
			name = name[:12]
		}
	}
	for what, v := range map[string]string{"--hostname": name, "--domainname": o.Domainname} {
		if len(v) > hostnameMax {
			return "", invalid("%s %q: longer than %d characters", what, v, hostnameMax)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", invalid("%s %q: contains a control character", what, v)
		}
	}
	return name, nil
}
