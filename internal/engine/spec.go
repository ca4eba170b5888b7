package engine

import (
	"errors"
	"fmt"
	"github.com/berth-project/berth/internal/errdefs"
	"path/filepath"

	"github.com/berth-project/berth/internal/specconv"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// buildSpec turns a container's record into its OCI spec with specconv.
// The record's Config is already merged with the image's (create did
// that), so specconv gets it as the image config and no overrides: the
// spec depends on the record alone, not on the image still existing.
//
// validating is set at create, when namespaces of other containers that
// may not run yet are only checked to exist.
func (e *Engine) buildSpec(c *ctr, rec *record, validating bool) (*specs.Spec, []string, error) {
	cfg, hc := rec.Config, rec.HostConfig
	img := &dockerspec.DockerOCIImage{}
	img.OS = "linux"
	img.Config.Env = cfg.Env
	img.Config.Entrypoint = cfg.Entrypoint
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		img.Config.Entrypoint = nil // the docker CLI's --entrypoint ""
	}
	img.Config.Cmd = cfg.Cmd
	img.Config.WorkingDir = cfg.WorkingDir
	img.Config.User = cfg.User

	o := &specconv.Options{
		ContainerID:       rec.ID,
		Rootfs:            c.rootfs,
		GroupAdd:          hc.GroupAdd,
		Hostname:          cfg.Hostname,
		Domainname:        cfg.Domainname,
		Tty:               cfg.Tty,
		ReadonlyRootfs:    hc.ReadonlyRootfs,
		Memory:            hc.Memory,
		MemorySwap:        hc.MemorySwap,
		MemoryReservation: hc.MemoryReservation,
		MemorySwappiness:  hc.MemorySwappiness,
		NanoCPUs:          hc.NanoCPUs,
		CPUShares:         hc.CPUShares,
		CPUQuota:          hc.CPUQuota,
		CPUPeriod:         hc.CPUPeriod,
		CpusetCpus:        hc.CpusetCpus,
		CpusetMems:        hc.CpusetMems,
		PidsLimit:         hc.PidsLimit,
		BlkioWeight:       hc.BlkioWeight,
		OomKillDisable:    hc.OomKillDisable,
		OomScoreAdj:       hc.OomScoreAdj,
		CapAdd:            hc.CapAdd,
		CapDrop:           hc.CapDrop,
		Privileged:        hc.Privileged,
		SecurityOpt:       hc.SecurityOpt,
		MaskedPaths:       hc.MaskedPaths,
		ReadonlyPaths:     hc.ReadonlyPaths,
		DeviceCgroupRules: hc.DeviceCgroupRules,
		ShmSize:           hc.ShmSize,
		Sysctls:           hc.Sysctls,
		Annotations:       hc.Annotations,
		CgroupParent:      hc.CgroupParent,
		CgroupnsMode:      string(hc.CgroupnsMode),
		UsernsMode:        string(hc.UsernsMode),
		Init:              hc.Init != nil && *hc.Init,
		InitPath:          e.cfg.InitPath,
	}
	if hc.ConsoleSize[0] > 0 && hc.ConsoleSize[1] > 0 {
		cs := hc.ConsoleSize
		o.ConsoleSize = &cs
	}
	for _, u := range hc.Ulimits {
		if u != nil {
			o.Ulimits = append(o.Ulimits, specconv.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		}
	}
	for _, d := range hc.Devices {
		o.Devices = append(o.Devices, specconv.Device{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}

	// Mounts: the user's, then the files the engine generates, unless
	// the user mounts over them.
	o.Tmpfs = map[string]string{}
	for k, v := range hc.Tmpfs {
		o.Tmpfs[filepath.Clean(k)] = v
	}
	users := map[string]bool{}
	for _, mp := range rec.Mounts {
		users[mp.Destination] = true
		switch mp.Type {
		case mount.TypeTmpfs:
			o.Tmpfs[mp.Destination] = mp.TmpfsOptions
		default:
			o.Mounts = append(o.Mounts, specconv.Mount{
				Source:       mp.Source,
				Destination:  mp.Destination,
				ReadOnly:     !mp.RW,
				Propagation:  string(mp.Propagation),
				NonRecursive: mp.NonRecursive,
			})
		}
	}
	for k := range o.Tmpfs {
		users[k] = true
	}
	for _, f := range []struct{ name, dest string }{
		{hostnameFile, "/etc/hostname"}, {hostsFile, "/etc/hosts"}, {resolvFile, "/etc/resolv.conf"},
	} {
		if users[f.dest] {
			continue
		}
		o.Mounts = append(o.Mounts, specconv.Mount{Source: filepath.Join(c.dir, f.name), Destination: f.dest, ReadOnly: hc.ReadonlyRootfs})
	}

	// Namespaces.
	nsOf := func(kind, ref string) (specconv.Namespace, error) {
		other, err := e.lookup(ref)
		if err != nil {
			return specconv.Namespace{}, err
		}
		if other == c {
			return specconv.Namespace{}, invalidf("cannot join the %s namespace of the container itself", kind)
		}
		if validating {
			return specconv.Namespace{Mode: specconv.NamespaceJoined, Path: "/proc/self/ns/" + kind}, nil
		}
		other.mu.Lock()
		pid, running := other.rec.State.Pid, other.rec.State.running()
		other.mu.Unlock()
		if !running || pid <= 0 {
			return specconv.Namespace{}, conflictf("cannot join %s namespace of a non running container: %s", kind, ref)
		}
		return specconv.Namespace{Mode: specconv.NamespaceJoined, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, kind)}, nil
	}
	var err error
	switch nm := container.NetworkMode(hc.NetworkMode); {
	case nm.IsHost():
		o.Network.Mode = specconv.NamespaceHost
	case nm.IsContainer():
		if o.Network, err = nsOf("net", nm.ConnectedContainer()); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case hc.IpcMode.IsHost():
		o.IPC.Mode = specconv.NamespaceHost
		o.ShmSource = "/dev/shm"
	case hc.IpcMode.IsNone():
		o.NoShm = true
	case hc.IpcMode.IsContainer():
		if o.IPC, err = nsOf("ipc", hc.IpcMode.Container()); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case hc.PidMode.IsHost():
		o.PID.Mode = specconv.NamespaceHost
	case hc.PidMode.IsContainer():
		if o.PID, err = nsOf("pid", hc.PidMode.Container()); err != nil {
			return nil, nil, err
		}
	}
	if hc.UTSMode.IsHost() {
		o.UTS.Mode = specconv.NamespaceHost
		o.Hostname, o.Domainname = "", ""
	}
	host := e.host
	if rt, err := e.runtimePath(hc.Runtime); err == nil {
		host = e.hostFor(rt)
	}
	spec, warnings, err := specconv.Spec(img, o, host)
	if err != nil {
		if errors.Is(err, specconv.ErrInvalid) {
			err = classify(errdefs.ErrInvalid, err)
		}
		return nil, nil, err
	}
	return spec, warnings, nil
}

// mounted tells whether path is a mount point (statx's
// STATX_ATTR_MOUNT_ROOT, Linux 5.8).
func mounted(path string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		return false
	}
	return stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
