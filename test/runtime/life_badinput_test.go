package runtime_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestLifeBadInput gives create one broken input at a time: each must fail
// with an error naming the problem and leave nothing behind (no container
// in list, no state directory, no cgroup, no mount).
func TestLifeBadInput(t *testing.T) {
	t.Parallel()
	userNS := func(s *specs.Spec, uid, gid []specs.LinuxIDMapping) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = uid, gid
	}
	good := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, tc := range []struct {
		name string
		// edit changes the spec; raw, when set, replaces config.json.
		edit func(s *specs.Spec, b *fixture.OCIBundle)
		raw  string
		want []string
	}{
		{name: "config-not-json", raw: "{\"ociVersion\": \"1.2.0\", \"process\": ", want: []string{"config.json"}},
		{name: "config-wrong-type", raw: `{"ociVersion": "1.2.0", "process": "sh"}`, want: []string{"config.json"}},
		{name: "missing-rootfs", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Root.Path = "no-such-rootfs"
		}, want: []string{"no-such-rootfs"}},
		{name: "rootfs-is-a-file", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Root.Path = "config.json"
		}, want: []string{"rootfs", "not a directory"}},
		{name: "relative-mount-destination", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "relative/dir", Type: "tmpfs", Source: "tmpfs"})
		}, want: []string{"relative/dir"}},
		{name: "unknown-namespace", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogusns"})
		}, want: []string{"bogusns"}},
		{name: "duplicate-namespace", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		}, want: []string{"network"}},
		{name: "namespace-path-not-a-namespace", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = filepath.Join(b.Dir, "config.json")
				}
			}
		}, want: []string{"namespace"}},
		{name: "id-mapping-size-0", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			userNS(s, []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 0}}, good)
		}, want: []string{"size"}},
		{name: "id-mappings-overlap", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			userNS(s, good, []specs.LinuxIDMapping{
				{ContainerID: 0, HostID: 100000, Size: 1000},
				{ContainerID: 500, HostID: 200000, Size: 1000},
			})
		}, want: []string{"overlap"}},
		{name: "user-namespace-without-mappings", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			userNS(s, nil, nil)
		}, want: []string{"mapping"}},
		{name: "missing-binary", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Args = []string{"/bin/no-such-program", "x"}
		}, want: []string{"/bin/no-such-program"}},
		{name: "missing-binary-in-path", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Args = []string{"no-such-command"}
		}, want: []string{"no-such-command"}},
		{name: "cwd-is-a-file", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Cwd = "/etc/passwd"
		}, want: []string{"etc/passwd", "not a directory"}},
		{name: "relative-cwd", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Cwd = "tmp"
		}, want: []string{"cwd"}},
		{name: "empty-args", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Args = nil
		}, want: []string{"args"}},
		{name: "unknown-capability", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_NO_SUCH_THING")
		}, want: []string{"CAP_NO_SUCH_THING"}},
		{name: "unknown-rlimit", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1})
		}, want: []string{"RLIMIT_BOGUS"}},
		{name: "relative-hook-path", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "bin/hook"}}}
		}, want: []string{"bin/hook"}},
		{name: "cgroups-path-escapes", edit: func(s *specs.Spec, b *fixture.OCIBundle) {
			s.Linux.CgroupsPath = "/.."
		}, want: []string{"cgroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			cg := lifeUniqueCgroup(t)
			b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"),
				fixture.WithSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = cg }))
			if tc.edit != nil {
				tc.edit(b.Spec, b)
				b.Save(t)
			}
			if tc.raw != "" {
				if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(tc.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			base := lifeMountsUnder(t, b.Dir)
			id := lifeID(t)
			lifeFail(t, r, tc.want, "create", "--bundle", b.Dir, id)
			lifeNoLeftovers(t, r, id, cg, b.Dir, base)
			// run fails the same way.
			lifeFail(t, r, tc.want, "run", "--bundle", b.Dir, id)
			lifeNoLeftovers(t, r, id, cg, b.Dir, base)
		})
	}
}

// TestLifeBadIDs checks ids that are not one safe path component: the
// state root must not be escaped.
func TestLifeBadIDs(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	base := lifeMountsUnder(t, b.Dir)
	for _, id := range []string{"../x", "..", ".", "a/b", "/abs", "with space", "new\nline", ""} {
		res := lifeFail(t, r, nil, "create", "--bundle", b.Dir, id)
		if id != "" && !strings.Contains(res.Stderr, "id") {
			t.Errorf("create %q: the error does not say the id is invalid: %q", id, res.Stderr)
		}
		for _, cmd := range [][]string{{"start", id}, {"state", id}, {"kill", id}, {"delete", "--force", id}} {
			if res := lifeRun(t, r, cmd...); res.Code == 0 && cmd[0] != "delete" {
				t.Errorf("%s %q succeeded", cmd[0], id)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(r.Root), "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create ../x made %s (lstat: %v)", filepath.Join(filepath.Dir(r.Root), "x"), err)
	}
	if _, err := os.Lstat("/abs"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create /abs made /abs")
	}
	lifeNoLeftovers(t, r, "", "", b.Dir, base)
}

// TestLifeBadCommandLine checks unknown flags and commands, and missing
// arguments: a non-zero status and a usage message.
func TestLifeBadCommandLine(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	base := lifeMountsUnder(t, b.Dir)
	id := lifeID(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"create", "--no-such-flag", "--bundle", b.Dir, id}, []string{"no-such-flag", "usage"}},
		{[]string{"run", "--no-such-flag", "--bundle", b.Dir, id}, []string{"no-such-flag", "usage"}},
		{[]string{"exec", "--no-such-flag", id, "/bin/probe"}, []string{"no-such-flag", "usage"}},
		{[]string{"--no-such-global", "list"}, []string{"no-such-global", "usage"}},
		{[]string{"no-such-command"}, []string{"no-such-command"}},
		{[]string{"create", "--bundle", b.Dir}, []string{"usage"}},
		{[]string{"create", "--bundle", b.Dir, id, "extra"}, []string{"usage"}},
		{[]string{"start"}, []string{"usage"}},
		{[]string{"kill"}, []string{"usage"}},
		{[]string{"delete"}, []string{"usage"}},
		{[]string{"--log-format", "xml", "list"}, []string{"xml"}},
	} {
		lifeFail(t, r, tc.want, tc.args...)
	}
	// Nothing was created by any of them.
	lifeNoLeftovers(t, r, id, "", b.Dir, base)
	if _, err := os.Lstat(filepath.Join(r.Root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command created the container's state")
	}
}

// TestLifeBadStart checks start of a container that was never created, and
// of one whose init died before start.
func TestLifeBadStart(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	lifeFail(t, r, []string{"never-created"}, "start", "never-created")
	lifeNoLeftovers(t, r, "never-created", "", "", nil)

	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id := lifeID(t)
	lifeMust(t, r, "create", "--bundle", b.Dir, id)
	s := r.State(id)
	// Kill the waiting init from outside: start must fail, not hang.
	if err := syscall.Kill(s.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.WaitStatus(id, "stopped", 10*time.Second)
	res := lifeFail(t, r, nil, "start", id)
	if res.Elapsed > 10*time.Second {
		t.Errorf("start of a dead container took %s", res.Elapsed)
	}
	lifeMust(t, r, "delete", id)
}
