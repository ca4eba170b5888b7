package systemd

import (
	"errors"
	"strings"
	"testing"
)

func TestParseUnit(t *testing.T) {
	for _, tc := range []struct {
		path, id            string
		slice, name, cgroup string
		isSlice             bool
	}{
		{"system.slice:berth:abc", "x", "system.slice", "berth-abc.scope", "/system.slice/berth-abc.scope", false},
		{":berth:abc", "x", "system.slice", "berth-abc.scope", "/system.slice/berth-abc.scope", false},
		{"", "c1", "system.slice", "berth-c1.scope", "/system.slice/berth-c1.scope", false},
		{"system.slice::abc", "x", "system.slice", "abc.scope", "/system.slice/abc.scope", false},
		{"a-b.slice:p:n", "x", "a-b.slice", "p-n.scope", "/a.slice/a-b.slice/p-n.scope", false},
		{"machine.slice:libpod:0123abcd", "x", "machine.slice", "libpod-0123abcd.scope", "/machine.slice/libpod-0123abcd.scope", false},
		{"-.slice:berth:abc", "x", "-.slice", "berth-abc.scope", "/berth-abc.scope", false},
		{"kubepods.slice:x:kubepods-pod1.slice", "x", "kubepods.slice", "kubepods-pod1.slice", "/kubepods.slice/kubepods-pod1.slice", true},
		{"-.slice:x:mine.slice", "x", "-.slice", "mine.slice", "/mine.slice", true},
	} {
		u, err := parseUnit(tc.path, tc.id)
		if err != nil {
			t.Errorf("parseUnit(%q): %v", tc.path, err)
			continue
		}
		if u.Slice != tc.slice || u.Name != tc.name || u.Cgroup != tc.cgroup || u.IsSlice() != tc.isSlice {
			t.Errorf("parseUnit(%q) = %+v (slice %v), want %s %s %s (slice %v)", tc.path, u, u.IsSlice(), tc.slice, tc.name, tc.cgroup, tc.isSlice)
		}
	}
}

func TestParseUnitInvalid(t *testing.T) {
	for _, tc := range []struct{ path, id, msg string }{
		{"/a/b", "x", "slice:prefix:name"},
		{"a:b", "x", "slice:prefix:name"},
		{"a:b:c:d", "x", "slice:prefix:name"},
		{"system:berth:abc", "x", "not a slice unit"},
		{"system.slice:berth:", "x", "empty name"},
		{"a--b.slice:p:n", "x", "empty component"},
		{"-a.slice:p:n", "x", "empty component"},
		{"a-.slice:p:n", "x", "empty component"},
		{"system.slice:berth:a/b", "x", "not allowed"},
		{"system.slice:berth:a b", "x", "not allowed"},
		{"system.slice:ber@th:abc", "x", "not allowed"},
		{"", "bad/id", "not allowed"},
		{"system.slice:berth:" + strings.Repeat("a", 250), "x", "longer than 255"},
		// A slice unit's name fixes its parent.
		{"system.slice:x:other.slice", "x", "a slice's name fixes its parent"},
		{"a.slice:x:b-c.slice", "x", "a slice's name fixes its parent"},
		{"-.slice:x:-.slice", "x", "root slice"},
		{"-.slice:x:system.slice", "x", ""}, // valid by name; Apply refuses a live one
	} {
		_, err := parseUnit(tc.path, tc.id)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("parseUnit(%q): %v", tc.path, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parseUnit(%q): got %v, want an invalid-path error mentioning %q", tc.path, err, tc.msg)
		}
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"-.slice":         "/",
		"system.slice":    "/system.slice",
		"a-b.slice":       "/a.slice/a-b.slice",
		"a-b-c.slice":     "/a.slice/a-b.slice/a-b-c.slice",
		"user-1000.slice": "/user.slice/user-1000.slice",
		"x_y\\x2dz.slice": "/x_y\\x2dz.slice",
	} {
		got, err := expandSlice(in)
		if err != nil || got != want {
			t.Errorf("expandSlice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "system", "a/b.slice", "--.slice", "a-.slice", "foo.scope"} {
		if got, err := expandSlice(in); err == nil {
			t.Errorf("expandSlice(%q) = %q, want an error", in, got)
		}
	}
}

// isSystemdPath must agree with the cgroups package, which refuses these
// paths for cgroupfs: New here sends exactly them to systemd.
func TestIsSystemdPath(t *testing.T) {
	for p, want := range map[string]bool{
		"system.slice:berth:abc": true,
		":berth:abc":             true,
		"::abc":                  true,
		"a-b.slice::x":           true,
		"/system.slice:berth:a":  false,
		"foo:bar:baz":            false,
		"a:b":                    false,
		"":                       false,
		"berth/abc":              false,
	} {
		if got := isSystemdPath(p); got != want {
			t.Errorf("isSystemdPath(%q) = %v, want %v", p, got, want)
		}
	}
}
