package specconv

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultMounts(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, nil)
	want := map[string]struct {
		typ  string
		opts []string
	}{
		"/proc":          {"proc", []string{"nosuid", "noexec", "nodev"}},
		"/dev":           {"tmpfs", []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		"/dev/pts":       {"devpts", []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		"/dev/shm":       {"tmpfs", []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		"/dev/mqueue":    {"mqueue", []string{"nosuid", "noexec", "nodev"}},
		"/sys":           {"sysfs", []string{"nosuid", "noexec", "nodev", "ro"}},
		"/sys/fs/cgroup": {"cgroup", []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	if len(s.Mounts) != len(want) {
		t.Errorf("mounts %+v, want the %d defaults", s.Mounts, len(want))
	}
	for dest, w := range want {
		m, ok := findMount(s, dest)
		if !ok || m.Type != w.typ || !slices.Equal(m.Options, w.opts) {
			t.Errorf("%s: %+v, want %s %v", dest, m, w.typ, w.opts)
		}
	}
	if s.Root.Path == "" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, func(o *Options) {
		o.ReadonlyRootfs = true
		o.Tmpfs = map[string]string{"/run": ""}
		o.Mounts = []Mount{{Source: "/srv/data", Destination: "/data"}}
	})
	if !s.Root.Readonly {
		t.Error("root is writable")
	}
	for _, m := range s.Mounts {
		ro := slices.Contains(m.Options, "ro")
		switch m.Destination {
		case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/run", "/data":
			if ro {
				t.Errorf("%s is read-only: docker keeps it writable under --read-only", m.Destination)
			}
		default:
			if !ro {
				t.Errorf("%s is writable under --read-only", m.Destination)
			}
		}
		if n := countOpt(m.Options, "ro"); n > 1 {
			t.Errorf("%s has ro %d times", m.Destination, n)
		}
	}
}

func countOpt(opts []string, o string) int {
	n := 0
	for _, x := range opts {
		if x == o {
			n++
		}
	}
	return n
}

func TestUserMounts(t *testing.T) {
	t.Parallel()
	s := mustSpec(t, nil, func(o *Options) {
		o.Mounts = []Mount{
			{Source: "/srv/a/b", Destination: "/data/deep/er"},
			{Source: "/srv/a", Destination: "/data/", ReadOnly: true},
			{Source: "/var/lib/berth/volumes/v1/_data", Destination: "/vol", Propagation: "rslave", NonRecursive: true},
		}
		o.Tmpfs = map[string]string{"/run": "size=64m,exec,mode=1700", "/tmp": "", "/data/deep": "ro,shared"}
		o.ShmSize = 1 << 30
	})
	var order []string
	for _, m := range s.Mounts {
		order = append(order, m.Destination)
	}
	// Defaults first, then the user's, parents before children.
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
		"/data", "/vol", "/run", "/tmp", "/data/deep", "/data/deep/er"}
	if !slices.Equal(order, want) {
		t.Errorf("mount order %q\nwant %q", order, want)
	}
	for dest, w := range map[string]specs.Mount{
		"/data":         {Type: "bind", Source: "/srv/a", Options: []string{"rbind", "ro", "rprivate"}},
		"/data/deep/er": {Type: "bind", Source: "/srv/a/b", Options: []string{"rbind", "rprivate"}},
		"/vol":          {Type: "bind", Source: "/var/lib/berth/volumes/v1/_data", Options: []string{"bind", "rslave"}},
		"/run":          {Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "size=64m", "exec", "mode=1700"}},
		"/tmp":          {Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		"/data/deep":    {Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "ro", "shared"}},
		"/dev/shm":      {Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1073741824"}},
	} {
		m, _ := findMount(s, dest)
		if m.Type != w.Type || m.Source != w.Source || !slices.Equal(m.Options, w.Options) {
			t.Errorf("%s: %s %s %q, want %s %s %q", dest, m.Type, m.Source, m.Options, w.Type, w.Source, w.Options)
		}
	}
	if s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("rootfs propagation %q with an rslave bind, want rslave", s.Linux.RootfsPropagation)
	}
	s = mustSpec(t, nil, func(o *Options) {
		o.Mounts = []Mount{{Source: "/a", Destination: "/a", Propagation: "rslave"}, {Source: "/b", Destination: "/b", Propagation: "shared"}}
	})
	if s.Linux.RootfsPropagation != "shared" {
		t.Errorf("rootfs propagation %q with a shared bind, want shared", s.Linux.RootfsPropagation)
	}
}

func TestMountOverrides(t *testing.T) {
	t.Parallel()
	// A user /dev replaces every default mount beneath it.
	s := mustSpec(t, nil, func(o *Options) { o.Mounts = []Mount{{Source: "/dev", Destination: "/dev"}} })
	for _, d := range []string{"/dev/pts", "/dev/shm", "/dev/mqueue"} {
		if _, ok := findMount(s, d); ok {
			t.Errorf("%s kept under a user /dev", d)
		}
	}
	if m, _ := findMount(s, "/dev"); m.Type != "bind" {
		t.Errorf("/dev is %s, want the user's bind", m.Type)
	}
	// A tmpfs on /dev/shm replaces docker's.
	s = mustSpec(t, nil, func(o *Options) { o.Tmpfs = map[string]string{"/dev/shm": "size=1g"} })
	if m, _ := findMount(s, "/dev/shm"); m.Source != "tmpfs" || countMounts(s, "/dev/shm") != 1 {
		t.Errorf("/dev/shm %+v (%d mounts), want only the user's", m, countMounts(s, "/dev/shm"))
	}
	// --ipc none: no /dev/shm; a shareable one: the engine's directory.
	s = mustSpec(t, nil, func(o *Options) { o.NoShm = true; o.ShmSource = "/ignored" })
	if _, ok := findMount(s, "/dev/shm"); ok {
		t.Error("/dev/shm with NoShm")
	}
	s = mustSpec(t, nil, func(o *Options) { o.ShmSource = "/var/lib/berth/containers/x/shm" })
	if m, _ := findMount(s, "/dev/shm"); m.Type != "bind" || m.Source != "/var/lib/berth/containers/x/shm" || countMounts(s, "/dev/shm") != 1 {
		t.Errorf("/dev/shm %+v, want the engine's bind", m)
	}
	// --init binds the engine's init and runs it first.
	s = mustSpec(t, nil, func(o *Options) { o.Init, o.InitPath, o.Cmd = true, "/usr/libexec/berth/tini", []string{"sleep", "1"} })
	if m, _ := findMount(s, "/sbin/docker-init"); m.Source != "/usr/libexec/berth/tini" || !slices.Equal(m.Options, []string{"bind", "ro"}) {
		t.Errorf("init mount %+v", m)
	}
	if !slices.Equal(s.Process.Args, []string{"/sbin/docker-init", "--", "sleep", "1"}) {
		t.Errorf("args with --init: %q", s.Process.Args)
	}
	// ... but not in another PID namespace, which has its init.
	s = mustSpec(t, nil, func(o *Options) { o.Init, o.InitPath = true, "/tini"; o.PID.Mode = NamespaceHost })
	if _, ok := findMount(s, "/sbin/docker-init"); ok || s.Process.Args[0] != "/bin/sh" {
		t.Errorf("--init with --pid host: args %q", s.Process.Args)
	}
}

func countMounts(s *specs.Spec, dest string) int {
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == dest {
			n++
		}
	}
	return n
}

func TestMountErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		err  string
	}{
		{"relative destination", func(o *Options) { o.Mounts = []Mount{{Source: "/a", Destination: "data"}} }, "not an absolute path"},
		{"relative source", func(o *Options) { o.Mounts = []Mount{{Source: "a", Destination: "/data"}} }, "not an absolute host path"},
		{"over /", func(o *Options) { o.Mounts = []Mount{{Source: "/a", Destination: "/x/.."}} }, "cannot mount over /"},
		{"duplicate", func(o *Options) {
			o.Mounts = []Mount{{Source: "/a", Destination: "/data"}}
			o.Tmpfs = map[string]string{"/data/": ""}
		}, "duplicate mount point: /data"},
		{"propagation", func(o *Options) { o.Mounts = []Mount{{Source: "/a", Destination: "/d", Propagation: "everywhere"}} }, `unknown propagation "everywhere"`},
		{"tmpfs option", func(o *Options) { o.Tmpfs = map[string]string{"/t": "size=1g,uid=0,bind"} }, `unknown option "bind"`},
		{"tmpfs smuggled option", func(o *Options) { o.Tmpfs = map[string]string{"/t": "mode=0777x"} }, `invalid option "mode=0777x"`},
		{"tmpfs size", func(o *Options) { o.Tmpfs = map[string]string{"/t": "size=lots"} }, `invalid option "size=lots"`},
		{"shm size", func(o *Options) { o.ShmSize = -1 }, "--shm-size"},
		{"init path", func(o *Options) { o.Init = true }, "init binary"},
	} {
		_, _, err := trySpec(t, nil, tc.edit)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		wantErr(t, err, tc.err)
	}
}
