package docker

import (
	"bufio"
	"bytes"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/internal/snapshot"
)

// snapshotterOwner is implemented by an image store that can show the
// snapshotter it chose when berthd left the choice to it.
type snapshotterOwner interface {
	Snapshotter() snapshot.Snapshotter
}

// info answers GET /info with what this host and daemon really are.
func (s *Server) info(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	ctx := r.Context()
	imgs, err := s.images.List(ctx, image.ListOptions{All: true})
	if err != nil {
		return err
	}
	driver := s.storageDriver()
	osName, osVersion := osRelease()
	hostname, _ := os.Hostname()
	info := system.Info{
		ID:                 s.cfg.ID,
		Images:             len(imgs),
		Driver:             driver,
		DriverStatus:       [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}, {"Backing Filesystem", backingFS(s.cfg.DataRoot)}},
		Plugins:            system.PluginsInfo{Volume: []string{}, Network: []string{}, Authorization: nil, Log: []string{}},
		IPv4Forwarding:     readTrimmed("/proc/sys/net/ipv4/ip_forward") == "1",
		Debug:              s.cfg.Debug,
		NFd:                openFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         s.now().Format(time.RFC3339Nano),
		CgroupDriver:       map[bool]string{false: "cgroupfs", true: "systemd"}[s.cfg.SystemdCgroup],
		NEventsListener:    s.events.Listeners(),
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName,
		OSVersion:          osVersion,
		OSType:             runtime.GOOS,
		Architecture:       machine(),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     registryConfig(s.cfg.Mirrors, s.cfg.Insecure),
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      s.cfg.DataRoot,
		HTTPProxy:          proxyEnv("HTTP_PROXY"),
		HTTPSProxy:         proxyEnv("HTTPS_PROXY"),
		NoProxy:            proxyEnv("NO_PROXY"),
		Name:               hostname,
		Labels:             []string{},
		ServerVersion:      s.cfg.Version,
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		SecurityOptions:    []string{},
		CDISpecDirs:        []string{},
		Warnings:           []string{},
	}
	if s.containers != nil {
		list, err := s.containers.List(ctx, engine.ListOptions{All: true})
		if err != nil {
			return err
		}
		info.Containers = len(list)
		for _, c := range list {
			switch c.State {
			case container.StateRunning, container.StateRestarting:
				info.ContainersRunning++
			case container.StatePaused:
				info.ContainersPaused++
			default:
				info.ContainersStopped++
			}
		}
		info.Plugins.Volume = []string{"local"}
	}
	if layout, err := cgroups.Detect(); err == nil {
		info.CgroupVersion = "1"
		if layout.Mode == cgroups.Unified {
			info.CgroupVersion = "2"
			info.SecurityOptions = append(info.SecurityOptions, "name=cgroupns")
		}
		_, info.MemoryLimit = layout.HierarchyOf("memory")
		_, info.CPUShares = layout.HierarchyOf("cpu")
		info.CPUCfsPeriod, info.CPUCfsQuota = info.CPUShares, info.CPUShares
		_, info.CPUSet = layout.HierarchyOf("cpuset")
		_, info.PidsLimit = layout.HierarchyOf("pids")
		info.SwapLimit = swapLimit(layout)
		info.OomKillDisable = info.MemoryLimit && layout.Mode != cgroups.Unified
	} else {
		info.Warnings = append(info.Warnings, "WARNING: cannot read the cgroup layout: "+err.Error())
	}
	if seccompSupported() {
		info.SecurityOptions = append([]string{"name=seccomp,profile=builtin"}, info.SecurityOptions...)
	}
	return writeJSON(w, http.StatusOK, info)
}

// storageDriver names the snapshotter as docker's containerd image store
// does ("overlayfs"), or "copy" for the fallback.
func (s *Server) storageDriver() string {
	name := s.cfg.StorageDriver
	if o, ok := s.images.(snapshotterOwner); ok && name == "" {
		// Only the overlay snapshotter takes overlayfs whiteouts.
		if o.Snapshotter().Caps().OverlayWhiteouts {
			name = "overlay"
		} else {
			name = "copy"
		}
	}
	switch name {
	case "overlay", "overlayfs", "overlay2":
		return "overlayfs"
	case "":
		return "unknown"
	}
	return name
}

func swapLimit(l cgroups.Layout) bool {
	h, ok := l.HierarchyOf("memory")
	if !ok {
		return false
	}
	file := "memory.memsw.limit_in_bytes"
	if h.Unified {
		file = "memory.swap.max"
		// The root cgroup of v2 has no interface files: look one below.
		entries, _ := os.ReadDir(h.Mountpoint)
		for _, e := range entries {
			if e.IsDir() {
				if _, err := os.Stat(h.Mountpoint + "/" + e.Name() + "/" + file); err == nil {
					return true
				}
			}
		}
		return false
	}
	_, err := os.Stat(h.Mountpoint + "/" + file)
	return err == nil
}

func seccompSupported() bool {
	// PR_GET_SECCOMP fails with EINVAL on kernels without CONFIG_SECCOMP.
	_, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	return err == nil
}

func registryConfig(mirrors, insecure []string) *registry.ServiceConfig {
	cfg := &registry.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: append([]string{}, mirrors...), Secure: true, Official: true},
		},
		Mirrors: append([]string{}, mirrors...),
	}
	for _, i := range insecure {
		if p, err := netip.ParsePrefix(i); err == nil {
			cfg.InsecureRegistryCIDRs = append(cfg.InsecureRegistryCIDRs, p)
			continue
		}
		cfg.IndexConfigs[i] = &registry.IndexInfo{Name: i, Mirrors: []string{}, Secure: false}
	}
	return cfg
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// osRelease returns PRETTY_NAME and VERSION_ID of /etc/os-release.
func osRelease() (name, version string) {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	if name == "" {
		name = "Linux"
	}
	return name, version
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

func readTrimmed(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func proxyEnv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// backingFS names the file system under dir by its statfs magic.
func backingFS(dir string) string {
	var st unix.Statfs_t
	if dir == "" || unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch int64(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case 0x2fc12fc1: // ZFS_SUPER_MAGIC, not in x/sys
		return "zfs"
	}
	return "unknown"
}
