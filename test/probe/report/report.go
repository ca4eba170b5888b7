package report

import (
	"encoding/json"
	"slices"
)

// Unlimited is how a resource limit of RLIM_INFINITY is written.
const Unlimited int64 = -1

// NamespaceKinds are the entries of /proc/self/ns the probe reports, in
// the order the kernel documents them.
var NamespaceKinds = []string{
	"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
	"time", "time_for_children", "user", "uts",
}

// Report is what the probe prints with no arguments or with "report".
type Report struct {
	Hostname   string `json:"hostname"`
	Domainname string `json:"domainname"`

	PID  int `json:"pid"`
	PPID int `json:"ppid"`
	PGID int `json:"pgid"`
	SID  int `json:"sid"`

	UID    int   `json:"uid"`
	EUID   int   `json:"euid"`
	SUID   int   `json:"suid"`
	GID    int   `json:"gid"`
	EGID   int   `json:"egid"`
	SGID   int   `json:"sgid"`
	Groups []int `json:"groups"`

	Capabilities Capabilities `json:"capabilities"`

	// NoNewPrivs is the NoNewPrivs field of /proc/self/status.
	NoNewPrivs bool `json:"no_new_privs"`
	// Seccomp is the Seccomp field of /proc/self/status: 0 disabled,
	// 1 strict, 2 filter.
	Seccomp int `json:"seccomp"`
	// SeccompFilters is the Seccomp_filters field (number of attached
	// filters), -1 if the kernel does not report it.
	SeccompFilters int `json:"seccomp_filters"`

	// Rlimits maps every limit name ("RLIMIT_NOFILE", ...) to its value as
	// the process was started, before the Go runtime raised its own soft
	// RLIMIT_NOFILE (the probe undoes that adjustment; see the probe's doc).
	Rlimits map[string]Rlimit `json:"rlimits"`

	// Umask is the octal Umask field of /proc/self/status, e.g. "0022".
	Umask string `json:"umask"`

	Mounts     []Mount           `json:"mounts"`
	Namespaces map[string]uint64 `json:"namespaces"`
	// Cgroup holds the lines of /proc/self/cgroup as they are.
	Cgroup []string `json:"cgroup"`

	Cwd string   `json:"cwd"`
	Env []string `json:"env"`
	Exe string   `json:"exe"`

	// FDs are the open descriptors, sorted by number, without the one
	// the probe used to read /proc/self/fd.
	FDs []FD `json:"fds"`

	OOMScoreAdj int `json:"oom_score_adj"`
	// Personality is the execution domain from personality(0xffffffff);
	// 0 is PER_LINUX.
	Personality uint32 `json:"personality"`

	TTY TTYInfo `json:"tty"`

	// Errors lists what the probe failed to read ("read /proc/self/cgroup:
	// ..."); a field that could not be read keeps its zero value.
	Errors []string `json:"errors,omitempty"`
}

// Capabilities are the five capability sets of the process.
type Capabilities struct {
	Bounding    []string `json:"bounding"`
	Permitted   []string `json:"permitted"`
	Effective   []string `json:"effective"`
	Inheritable []string `json:"inheritable"`
	Ambient     []string `json:"ambient"`
}

// Rlimit is one resource limit; Unlimited (-1) stands for RLIM_INFINITY.
type Rlimit struct {
	Soft int64 `json:"soft"`
	Hard int64 `json:"hard"`
}

// Mount is one line of /proc/self/mountinfo (see proc(5)), with the octal
// escapes of paths decoded.
type Mount struct {
	ID       int    `json:"id"`
	ParentID int    `json:"parent_id"`
	Major    int    `json:"major"`
	Minor    int    `json:"minor"`
	Root     string `json:"root"`
	// MountPoint is relative to the process's root.
	MountPoint string `json:"mount_point"`
	// Options are the per-mount options (ro, nosuid, relatime, ...).
	Options []string `json:"options"`
	// Propagation are the optional fields: "shared:N", "master:N",
	// "propagate_from:N", "unbindable"; empty for a private mount.
	Propagation  []string `json:"propagation"`
	FSType       string   `json:"fstype"`
	Source       string   `json:"source"`
	SuperOptions []string `json:"super_options"`
}

// HasOption reports whether opt is among the per-mount options.
func (m Mount) HasOption(opt string) bool { return slices.Contains(m.Options, opt) }

// FD is one entry of /proc/self/fd.
type FD struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
}

// TTYInfo describes standard input as a terminal and the controlling
// terminal of the process.
type TTYInfo struct {
	// Stdin0IsTTY is isatty(0).
	Stdin0IsTTY bool `json:"stdin_isatty"`
	// Name is readlink(/proc/self/fd/0) when fd 0 is a terminal, e.g.
	// "/dev/pts/0"; empty otherwise.
	Name string `json:"name,omitempty"`
	// CttyMajor and CttyMinor are the tty_nr field of /proc/self/stat:
	// the controlling terminal's device, 0:0 when there is none.
	CttyMajor int `json:"ctty_major"`
	CttyMinor int `json:"ctty_minor"`
}

// Mount returns the last mount whose mount point is path (the one on top),
// and whether there is one.
func (r *Report) Mount(path string) (Mount, bool) {
	for i := len(r.Mounts) - 1; i >= 0; i-- {
		if r.Mounts[i].MountPoint == path {
			return r.Mounts[i], true
		}
	}
	return Mount{}, false
}

// Terminal is what "probe tty" prints.
type Terminal struct {
	// IsTTY is isatty of descriptors 0, 1 and 2, in that order.
	IsTTY [3]bool `json:"isatty"`
	// Rows and Cols come from TIOCGWINSZ on the first descriptor of 0, 1,
	// 2 that is a terminal; 0 when none is.
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Stat is what "probe stat PATH" prints: lstat of the path, and stat
// following symbolic links.
type Stat struct {
	Lstat FileInfo `json:"lstat"`
	// Stat follows symlinks; nil when it failed, with FollowError set.
	Stat        *FileInfo `json:"stat,omitempty"`
	FollowError string    `json:"follow_error,omitempty"`
}

// FileInfo is one stat(2) result.
type FileInfo struct {
	// Mode is st_mode as a number: type bits and permission bits.
	Mode uint32 `json:"mode"`
	// Perm is the permission, set-id and sticky bits as octal text,
	// e.g. "1777".
	Perm string `json:"perm"`
	// Type is one of "file", "dir", "symlink", "char", "block", "fifo",
	// "socket", "unknown".
	Type      string `json:"type"`
	UID       uint32 `json:"uid"`
	GID       uint32 `json:"gid"`
	RdevMajor uint32 `json:"rdev_major"`
	RdevMinor uint32 `json:"rdev_minor"`
	Size      int64  `json:"size"`
	// Link is the symlink's target, for Type "symlink".
	Link string `json:"link,omitempty"`
}

// Hook is one line "probe hook OUTFILE" appends to OUTFILE.
type Hook struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// State is the container state read from stdin, as it was given.
	State json.RawMessage `json:"state"`
	// TimeNS is the wall clock when the hook ran, in Unix nanoseconds.
	TimeNS int64 `json:"time_ns"`
}

// Fork is what "probe fork N" prints.
type Fork struct {
	Requested int `json:"requested"`
	Started   int `json:"started"`
	// Error is the error that stopped the first failed start, if any.
	Error string `json:"error,omitempty"`
	// Errno is that error's errno name ("EAGAIN"), if it has one.
	Errno string `json:"errno,omitempty"`
}
