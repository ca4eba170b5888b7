package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/runtime/specgen"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func bundle(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *specs.Spec)
		want string // substring of the error; "" means valid
	}{
		{"default", func(s *specs.Spec) {}, ""},
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "nope" }, "rootfs"},
		{"relative mount", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "data", Type: "tmpfs", Source: "tmpfs"})
		}, `destination "data" is not an absolute path`},
		{"unknown namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, `unknown namespace type "bogus"`},
		{"duplicate namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "listed twice"},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, "needs uidMappings"},
		{"zero-size mapping", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 0}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "size is 0"},
		{"overlapping mappings", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}, {ContainerID: 5, HostID: 5000, Size: 10}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "overlap"},
		{"maps without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "need a new user namespace"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/x"} }, "not namespaced"},
		{"hostname without uts", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.UTSNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}, "needs a uts namespace of the container's"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "cwd"},
		{"empty args", func(s *specs.Spec) { s.Process.Args = nil }, "args"},
		{"unknown rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }, "RLIMIT_BOGUS"},
		{"duplicate rlimit", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 10}, {Type: "RLIMIT_NOFILE", Soft: 20, Hard: 20}}
		}, "listed more than once"},
		{"rlimit soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20, Hard: 10}}
		}, "soft limit above hard limit"},
		{"unknown capability", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_BOGUS"} }, "CAP_BOGUS"},
		{"relative hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "true"}}} }, "not absolute"},
		{"bad propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "rootfsPropagation"},
		{"bad device type", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}}
		}, "unknown type"},
		{"time offsets without timens", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "time namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := specgen.Default()
			s.Process.Terminal = false
			c.edit(s)
			err := Validate(s, bundle(t))
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid spec refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "../x", "a/b", "a b", "x\x00"} {
		if ValidateID(id) == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	for _, id := range []string{"abc", "a-b_c.d+e", "0123456789abcdef"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("id %q refused: %v", id, err)
		}
	}
}
