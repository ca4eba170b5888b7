package caps

import (
	"fmt"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// names maps capability numbers to their names; the index is the number
// (include/uapi/linux/capability.h). The kernel may know more than this
// table: see LastCap.
var names = [...]string{
	0:  "CAP_CHOWN",
	1:  "CAP_DAC_OVERRIDE",
	2:  "CAP_DAC_READ_SEARCH",
	3:  "CAP_FOWNER",
	4:  "CAP_FSETID",
	5:  "CAP_KILL",
	6:  "CAP_SETGID",
	7:  "CAP_SETUID",
	8:  "CAP_SETPCAP",
	9:  "CAP_LINUX_IMMUTABLE",
	10: "CAP_NET_BIND_SERVICE",
	11: "CAP_NET_BROADCAST",
	12: "CAP_NET_ADMIN",
	13: "CAP_NET_RAW",
	14: "CAP_IPC_LOCK",
	15: "CAP_IPC_OWNER",
	16: "CAP_SYS_MODULE",
	17: "CAP_SYS_RAWIO",
	18: "CAP_SYS_CHROOT",
	19: "CAP_SYS_PTRACE",
	20: "CAP_SYS_PACCT",
	21: "CAP_SYS_ADMIN",
	22: "CAP_SYS_BOOT",
	23: "CAP_SYS_NICE",
	24: "CAP_SYS_RESOURCE",
	25: "CAP_SYS_TIME",
	26: "CAP_SYS_TTY_CONFIG",
	27: "CAP_MKNOD",
	28: "CAP_LEASE",
	29: "CAP_AUDIT_WRITE",
	30: "CAP_AUDIT_CONTROL",
	31: "CAP_SETFCAP",
	32: "CAP_MAC_OVERRIDE",
	33: "CAP_MAC_ADMIN",
	34: "CAP_SYSLOG",
	35: "CAP_WAKE_ALARM",
	36: "CAP_BLOCK_SUSPEND",
	37: "CAP_AUDIT_READ",
	38: "CAP_PERFMON",
	39: "CAP_BPF",
	40: "CAP_CHECKPOINT_RESTORE",
}

// byName is the reverse of names, built once from it so the two cannot
// disagree.
var byName = func() map[string]int {
	m := make(map[string]int, len(names))
	for n, s := range names {
		m[s] = n
	}
	return m
}()

// MaxKnown is the highest capability number this package has a name for.
const MaxKnown = len(names) - 1

// Name returns the name of capability n ("CAP_CHOWN" for 0). A number
// outside the table gets the kernel's fallback spelling, "cap_41".
func Name(n int) string {
	if n >= 0 && n < len(names) {
		return names[n]
	}
	return "cap_" + strconv.Itoa(n)
}

// Number returns the number of the capability named s ("CAP_CHOWN" -> 0).
// Names are matched exactly, as the runtime-spec spells them.
func Number(s string) (int, bool) {
	n, ok := byName[s]
	return n, ok
}

// All returns every name in the table, in number order.
func All() []string {
	out := make([]string, len(names))
	copy(out, names[:])
	return out
}

// Set is a set of capabilities, bit n for capability n, the layout of the
// kernel's 64-bit capability masks (two 32-bit words in capget(2)).
type Set uint64

// Has reports whether capability n is in s.
func (s Set) Has(n int) bool {
	return n >= 0 && n < 64 && s&(1<<uint(n)) != 0
}

// With returns s plus capability n; numbers outside 0-63 are ignored.
func (s Set) With(n int) Set {
	if n < 0 || n >= 64 {
		return s
	}
	return s | 1<<uint(n)
}

// ParseNames turns capability names into a Set. A name not in the table is
// an error naming it; a name in the table whose number is above lastCap (the
// running kernel's last capability) is left out of the set and returned in
// ignored, so the caller can warn.
func ParseNames(list []string, lastCap int) (s Set, ignored []string, err error) {
	for _, name := range list {
		n, ok := byName[name]
		if !ok {
			return 0, nil, fmt.Errorf("parse capability %q: unknown capability", name)
		}
		if n > lastCap {
			ignored = append(ignored, name)
			continue
		}
		s = s.With(n)
	}
	return s, ignored, nil
}

// Sets are the five capability sets of a process.
type Sets struct {
	Bounding    Set
	Effective   Set
	Permitted   Set
	Inheritable Set
	Ambient     Set
}

// FromSpec parses the capability names of an OCI process with ParseNames.
// A nil c yields empty sets. ignored lists each name the kernel does not
// know once, in the order first seen; the error names the set and the
// capability.
func FromSpec(c *specs.LinuxCapabilities, lastCap int) (s Sets, ignored []string, err error) {
	if c == nil {
		return Sets{}, nil, nil
	}
	seen := map[string]bool{}
	for _, f := range []struct {
		set   string
		names []string
		dst   *Set
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"permitted", c.Permitted, &s.Permitted},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"ambient", c.Ambient, &s.Ambient},
	} {
		set, ign, err := ParseNames(f.names, lastCap)
		if err != nil {
			return Sets{}, nil, fmt.Errorf("%s capabilities: %w", f.set, err)
		}
		*f.dst = set
		for _, name := range ign {
			if !seen[name] {
				seen[name] = true
				ignored = append(ignored, name)
			}
		}
	}
	return s, ignored, nil
}
