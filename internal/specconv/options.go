package specconv

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error caused by the options or the image
// (docker answers them with 400); other errors come from the host.
var ErrInvalid = errors.New("invalid container config")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Options are a container's settings in docker's terms: docker run's flags,
// the Engine API's Config and HostConfig. Zero values mean docker's
// defaults. Names of other objects (volumes, containers, networks) are
// resolved by the engine before it calls Spec.
type Options struct {
	// ContainerID is the container's full ID; the default hostname is its
	// first 12 characters and the default cgroup is named after it.
	ContainerID string
	// Rootfs is the absolute host path of the container's mounted root
	// filesystem; it becomes root.path and is where users and groups are
	// looked up.
	Rootfs string

	// Cmd replaces the image's Cmd when not empty.
	Cmd []string
	// Entrypoint replaces the image's Entrypoint when EntrypointSet
	// (docker's --entrypoint, which may be empty to clear it; [""] is the
	// CLI's spelling of empty). An explicit entrypoint also drops the
	// image's Cmd, as docker does: only Cmd above is appended to it.
	Entrypoint    []string
	EntrypointSet bool
	// Env is appended to the image's, replacing entries with the same key;
	// an entry without "=" removes that key.
	Env []string
	// WorkingDir replaces the image's; it must be absolute. Default "/".
	WorkingDir string
	// User replaces the image's: "name", "uid", "name:group", "uid:gid"
	// (and the mixed forms), looked up in the rootfs. Default root.
	User string
	// GroupAdd are additional groups, by name (looked up in the rootfs's
	// /etc/group) or number.
	GroupAdd []string

	// Hostname defaults to the first 12 characters of ContainerID, or to
	// the host's hostname when the container shares the host's network or
	// UTS namespace.
	Hostname   string
	Domainname string
	// Tty gives the process a terminal (and TERM=xterm). ConsoleSize is
	// its initial height and width, when known.
	Tty         bool
	ConsoleSize *[2]uint

	// ReadonlyRootfs mounts the rootfs read-only, and the default mounts
	// other than /proc, /dev, /dev/pts, /dev/shm and /dev/mqueue with it.
	ReadonlyRootfs bool
	// Tmpfs maps container paths to tmpfs options (docker's --tmpfs
	// PATH:OPTS); they are added to noexec,nosuid,nodev as docker does.
	Tmpfs map[string]string
	// Mounts are bind mounts, volumes included: the engine resolves a
	// volume to its host directory.
	Mounts []Mount

	// Resources, in docker's units: bytes, CPU shares, nano-CPUs,
	// microseconds for CPU quota and period.
	Memory            int64
	MemorySwap        int64 // -1: unlimited; 0 with Memory set: twice Memory, as docker
	MemoryReservation int64
	MemorySwappiness  *int64 // 0-100; nil or -1: the kernel's
	NanoCPUs          int64
	CPUShares         int64
	CPUQuota          int64
	CPUPeriod         int64
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         *int64 // nil: no limit set; 0 or -1: unlimited
	BlkioWeight       uint16 // 10-1000, 0: the kernel's
	OomKillDisable    *bool
	OomScoreAdj       int
	// Ulimits are resource limits; the default is none, that is the limits
	// the engine runs with.
	Ulimits []Ulimit

	// CapAdd and CapDrop take docker's forms: "NET_ADMIN",
	// "CAP_NET_ADMIN", any case, and "ALL".
	CapAdd, CapDrop []string
	// Privileged gives every capability the engine holds, every host
	// device, no seccomp filter, no masked or read-only paths, and
	// writable /sys and cgroup filesystems.
	Privileged bool
	// SecurityOpt are docker's --security-opt values: "seccomp=unconfined",
	// "seccomp=builtin", "seccomp=<profile JSON>" (the engine reads the
	// file, as the docker CLI does), "no-new-privileges[=true|false]",
	// "systempaths=unconfined", "writable-cgroups=true|false",
	// "apparmor=PROFILE", "label=...", and podman's "mask=/a:/b" and
	// "unmask=ALL|/a:/b". The ":" separator of old clients is accepted.
	SecurityOpt []string
	// MaskedPaths and ReadonlyPaths replace the defaults when not nil (the
	// Engine API's HostConfig fields); empty means none.
	MaskedPaths, ReadonlyPaths []string

	Devices           []Device
	DeviceCgroupRules []string // "c 1:3 rwm", "b 8:* r", "a *:* m"

	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// ShmSource, when set, is a host directory bound at /dev/shm instead
	// of a new tmpfs: the engine's shared /dev/shm of an IPC namespace
	// that is "shareable", another container's, or the host's /dev/shm.
	ShmSource string
	// NoShm leaves /dev/shm out (docker's --ipc none).
	NoShm bool

	Sysctls map[string]string

	// Init runs the engine's init (tini, as docker-init) as PID 1, bound
	// read-only from InitPath at /sbin/docker-init; ignored unless the
	// container has its own PID namespace, as docker does.
	Init     bool
	InitPath string

	Annotations map[string]string

	// CgroupParent replaces the engine's parent cgroup: a path for the
	// cgroupfs driver, a slice name ("x.slice") for systemd.
	CgroupParent string
	// CgroupnsMode is "private", "host" or "" (private on cgroup v2 hosts,
	// host otherwise, as docker).
	CgroupnsMode string

	// Namespaces: the zero value is a new namespace of the container's own.
	Network, IPC, PID, UTS Namespace

	// UsernsMode is "" or "host". With UIDMappings and GIDMappings (the
	// engine's remapping) and UsernsMode "", the container gets a user
	// namespace.
	UsernsMode               string
	UIDMappings, GIDMappings []IDMap
}

// NamespaceMode is where one of a container's namespaces comes from.
type NamespaceMode string

const (
	// NamespacePrivate is a namespace of the container's own: docker's
	// default, "private", "shareable" and "none" IPC, "bridge", "none"
	// and user-defined networks.
	NamespacePrivate NamespaceMode = ""
	// NamespaceHost shares the host's namespace (docker's "host").
	NamespaceHost NamespaceMode = "host"
	// NamespaceJoined shares another container's namespace (docker's
	// "container:ID"), at Namespace.Path.
	NamespaceJoined NamespaceMode = "container"
)

// Namespace says where one namespace comes from.
type Namespace struct {
	Mode NamespaceMode
	// Path is the namespace file to join: required for NamespaceJoined
	// (/proc/PID/ns/TYPE of the other container's init), and optional for
	// a private network namespace, where it names a namespace the engine made for this
	// container alone (a network namespace set up with CNI).
	Path string
}

// Mount is a bind mount of a host path; a volume is a bind of its
// directory.
type Mount struct {
	Source      string // absolute host path
	Destination string // absolute path in the container
	ReadOnly    bool
	// Propagation is "", "private", "rprivate", "shared", "rshared",
	// "slave" or "rslave"; "" is docker's rprivate.
	Propagation string
	// NonRecursive binds without the mounts beneath Source (docker's
	// bind-recursive=disabled).
	NonRecursive bool
}

// Ulimit is one --ulimit: Name as docker spells it ("nofile", "nproc",
// "memlock", ...); -1 is unlimited.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Device is one --device: a host device node (or a directory of them)
// made available in the container.
type Device struct {
	PathOnHost        string
	PathInContainer   string // default PathOnHost
	CgroupPermissions string // subset of "rwm", default "rwm"
}

// IDMap maps a range of IDs in a user namespace to the host's.
type IDMap struct {
	ContainerID, HostID, Size uint32
}
