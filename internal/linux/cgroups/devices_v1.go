package cgroups

import (
	"path/filepath"
	"slices"
	"strings"
)

// The v1 devices controller (Documentation/admin-guide/cgroup-v1/
// devices.rst, security/device_cgroup.c) keeps a default, allow all or
// deny all, and a list of exceptions to it. Writing "a" to devices.allow
// or devices.deny sets the default and clears the list (refused with
// EINVAL while the cgroup has children). Writing a rule to the file that
// agrees with the default removes the matching exception's access bits,
// matching type, major and minor exactly, never by wildcard; writing to
// the other file adds an exception, merged into one with the same
// numbers. devices.list shows "a *:* rwm" in allow-all mode, else the
// exceptions.

// v1Write is one write to devices.allow (allow) or devices.deny.
type v1Write struct {
	allow bool
	whole bool // "a": set the default and clear the exceptions
	rule  devRule
}

func (w v1Write) file() string {
	if w.allow {
		return "devices.allow"
	}
	return "devices.deny"
}

func (w v1Write) value() string {
	if w.whole {
		return "a"
	}
	return w.rule.String()
}

// v1Writes turns the spec's rules into controller writes: "deny all"
// first, so that the result depends on the rules alone, as the eBPF
// program's does, then each rule in order. A rule of type "a" with
// numbers or partial access cannot be written as such (the kernel reads
// any "a" as the whole default and ignores the rest), so it becomes a "c"
// and a "b" rule.
func v1Writes(rules []devRule) []v1Write {
	out := []v1Write{{allow: false, whole: true}}
	for _, r := range rules {
		switch {
		case r.typ == 'a' && r.major == wildcard && r.minor == wildcard && r.acc == accAll:
			out = append(out, v1Write{allow: r.allow, whole: true})
		case r.typ == 'a':
			c, b := r, r
			c.typ, b.typ = 'c', 'b'
			out = append(out, v1Write{allow: r.allow, rule: c}, v1Write{allow: r.allow, rule: b})
		default:
			out = append(out, v1Write{allow: r.allow, rule: r})
		}
	}
	return out
}

// v1State emulates the controller's state, to know devices.list after a
// set of writes without making them.
type v1State struct {
	allowAll bool
	ex       []devRule // the allow field is unused
}

// apply makes one write. It returns false when the write is one the
// kernel takes without doing what the rule says: removing an exception
// that a wider one (a wildcard) still covers.
func (st *v1State) apply(w v1Write) bool {
	if w.whole {
		st.allowAll = w.allow
		st.ex = nil
		return true
	}
	r := w.rule
	if w.allow != st.allowAll {
		// Allowing in deny-all mode, or denying in allow-all mode.
		for i, e := range st.ex {
			if e.typ == r.typ && e.major == r.major && e.minor == r.minor {
				st.ex[i].acc |= r.acc
				return true
			}
		}
		st.ex = append(st.ex, devRule{typ: r.typ, major: r.major, minor: r.minor, acc: r.acc})
		return true
	}
	kept := st.ex[:0]
	for _, e := range st.ex {
		if e.typ == r.typ && e.major == r.major && e.minor == r.minor {
			if e.acc &^= r.acc; e.acc == 0 {
				continue
			}
		}
		kept = append(kept, e)
	}
	st.ex = kept
	for _, e := range st.ex {
		if e.acc&r.acc != 0 && (e.typ == 'a' || e.typ == r.typ) &&
			(e.major == wildcard || e.major == r.major) &&
			(e.minor == wildcard || e.minor == r.minor) {
			return false
		}
	}
	return true
}

// list is devices.list as the kernel would show the state.
func (st *v1State) list() []string {
	if st.allowAll {
		return []string{"a *:* rwm"}
	}
	out := make([]string, len(st.ex))
	for i, e := range st.ex {
		out[i] = e.String()
	}
	return out
}

func (s *setter) devicesV1(dir string, rules []devRule) error {
	writes := v1Writes(rules)
	var st v1State
	for _, w := range writes {
		if !st.apply(w) {
			verb := "deny"
			if w.allow {
				verb = "allow"
			}
			s.warn("devices: rule %q (%s) has no effect on cgroup v1: a wider rule before it still covers the device", w.rule, verb)
		}
	}
	// An update usually repeats the rules in force. Rewriting them would
	// deny every device for an instant ("a" to devices.deny), failing the
	// container's opens meanwhile (runc#2366), and is refused outright
	// once the container made child cgroups. So compare first. Only
	// deny-all mode can be compared: in allow-all mode devices.list shows
	// "a *:* rwm" whatever the exceptions.
	if !st.allowAll {
		if cur, err := readFile(filepath.Join(dir, "devices.list")); err == nil && sameLines(cur, st.list()) {
			return nil
		}
	}
	for _, w := range writes {
		if err := setCtl(dir, w.file(), w.value(), "devices"); err != nil {
			return err
		}
	}
	return nil
}

// sameLines compares a control file's lines with want, in any order.
func sameLines(got string, want []string) bool {
	var g []string
	for _, l := range strings.Split(got, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			g = append(g, l)
		}
	}
	w := slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
