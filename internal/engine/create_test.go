package engine_test

import (
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/engine"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
)

func TestCreateInspect(t *testing.T) {
	v := newEnv(t)
	bind := t.TempDir()
	id, warnings, err := v.e.Create(ctx(t), "web", &container.Config{
		Image:  busybox,
		Cmd:    []string{"sh", "-c", "sleep 1"},
		Env:    []string{"A=1"},
		Labels: map[string]string{"tier": "front"},
	}, &container.HostConfig{
		Binds:  []string{bind + ":/host:ro", "named:/data"},
		Tmpfs:  map[string]string{"/scratch": "size=1m"},
		Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t2", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("ID %q", id)
	}
	r := v.inspect("web")
	if r.ID != id || r.Name != "/web" || r.Path != "sh" || !slices.Equal(r.Args, []string{"-c", "sleep 1"}) {
		t.Errorf("identity: %+v", r)
	}
	if r.State.Status != container.StateCreated || r.State.Running || r.State.Pid != 0 || r.State.StartedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("state %+v", r.State)
	}
	img, err := v.images.Get(ctx(t), busybox)
	if err != nil {
		t.Fatal(err)
	}
	if r.Image != img.ID.String() || r.Config.Image != busybox {
		t.Errorf("image %s / %s, want %s / %s", r.Image, r.Config.Image, img.ID, busybox)
	}
	if !slices.Contains(r.Config.Env, "A=1") || !slices.ContainsFunc(r.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		t.Errorf("env not merged with the image's: %q", r.Config.Env)
	}
	if r.Config.Hostname != id[:12] || r.Config.Labels["tier"] != "front" {
		t.Errorf("config %+v", r.Config)
	}
	hc := r.HostConfig
	if hc.NetworkMode != "bridge" || hc.RestartPolicy.Name != container.RestartPolicyDisabled || hc.LogConfig.Type != "json-file" || hc.ShmSize != 64<<20 || hc.IpcMode != "private" {
		t.Errorf("host config defaults: %+v", hc)
	}
	if _, ok := r.NetworkSettings.Networks["bridge"]; !ok {
		t.Errorf("networks %v", r.NetworkSettings.Networks)
	}
	if got, _ := os.ReadFile(r.HostnamePath); string(got) != id[:12]+"\n" {
		t.Errorf("hostname file %q", got)
	}
	if got, _ := os.ReadFile(r.HostsPath); !strings.Contains(string(got), "127.0.0.1\tlocalhost") {
		t.Errorf("hosts file %q", got)
	}
	if got, _ := os.ReadFile(r.ResolvConfPath); !strings.Contains(string(got), "nameserver ") || strings.Contains(string(got), "nameserver 127.") {
		t.Errorf("resolv.conf %q", got)
	}
	if r.LogPath != filepath.Join(v.cfg.DataRoot, "containers", id, id+"-json.log") {
		t.Errorf("log path %s", r.LogPath)
	}
	if r.GraphDriver == nil || r.GraphDriver.Data["UpperDir"] == "" {
		t.Errorf("graph driver %+v", r.GraphDriver)
	}
	var sawBind, sawVolume, sawTmpfs bool
	for _, m := range r.Mounts {
		switch {
		case m.Type == mount.TypeBind && m.Source == bind && m.Destination == "/host" && !m.RW && m.Mode == "ro" && m.Propagation == "rprivate":
			sawBind = true
		case m.Type == mount.TypeVolume && m.Name == "named" && m.Destination == "/data" && m.RW && m.Driver == "local" && m.Source == filepath.Join(v.cfg.DataRoot, "volumes", "named", "_data"):
			sawVolume = true
		case m.Type == mount.TypeTmpfs && m.Destination == "/t2":
			sawTmpfs = true
		}
	}
	if !sawBind || !sawVolume || !sawTmpfs || len(r.Mounts) != 3 {
		t.Errorf("mounts %+v", r.Mounts)
	}
	if refs := v.e.Volumes().Refs("named"); !slices.Equal(refs, []string{id}) {
		t.Errorf("volume refs %v", refs)
	}
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create"}) {
		t.Errorf("events %v", ev)
	}
	// Lookups: name with and without "/", a unique prefix.
	for _, ref := range []string{"/web", id[:5], id} {
		if got := v.inspect(ref); got.ID != id {
			t.Errorf("lookup %q found %s", ref, got.ID)
		}
	}
	if _, err := v.e.Inspect(ctx(t), "nope", false); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No such container: nope" {
		t.Errorf("unknown container: %v", err)
	}
}

func TestNames(t *testing.T) {
	v := newEnv(t)
	id := v.create("app", nil, nil)
	_, _, err := v.e.Create(ctx(t), "/app", &container.Config{Image: busybox}, nil, nil)
	want := `Conflict. The container name "/app" is already in use by container "` + id + `". You have to remove (or rename) that container to be able to reuse the name.`
	if !errors.Is(err, errdefs.ErrConflict) || err == nil || err.Error() != want {
		t.Errorf("name conflict: %v", err)
	}
	for _, bad := range []string{"a", "-x", "a b", "x/y"} {
		if _, _, err := v.e.Create(ctx(t), bad, &container.Config{Image: busybox}, nil, nil); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	gen := v.create("", nil, nil)
	name := v.inspect(gen).Name
	if !regexp.MustCompile(`^/[a-z]+_[a-z]+[0-9]*$`).MatchString(name) {
		t.Errorf("generated name %q", name)
	}
	if err := v.e.Rename(ctx(t), "app", "web"); err != nil {
		t.Fatal(err)
	}
	if v.inspect("web").ID != id {
		t.Error("rename lost the container")
	}
	if _, err := v.e.Inspect(ctx(t), "app", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	if err := v.e.Rename(ctx(t), "web", strings.TrimPrefix(name, "/")); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	// The freed name is free again.
	v.create("app", nil, nil)
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create", "rename"}) {
		t.Errorf("events %v", ev)
	}
}

// Bad requests are refused with docker's classes and leave nothing
// behind: no container directory, snapshot or volume.
func TestCreateRefusals(t *testing.T) {
	v := newEnv(t)
	five := 5
	cases := []struct {
		name  string
		cfg   container.Config
		hc    container.HostConfig
		class error
		msg   string
	}{
		{"unknown image", container.Config{Image: "nope"}, container.HostConfig{}, errdefs.ErrNotFound, "No such image: nope:latest"},
		{"restart policy", container.Config{}, container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, errdefs.ErrInvalid, ""},
		{"retries without on-failure", container.Config{}, container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always", MaximumRetryCount: five}}, errdefs.ErrInvalid, ""},
		{"rm and restart", container.Config{}, container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, errdefs.ErrInvalid, "can't create 'AutoRemove' container with restart policy"},
		{"unknown network", container.Config{}, container.HostConfig{NetworkMode: "mynet"}, errdefs.ErrNotFound, "network mynet not found"},
		{"missing bind source", container.Config{}, container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/nonexistent/berth", Target: "/x"}}}, errdefs.ErrInvalid, "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/berth"},
		{"duplicate mount point", container.Config{}, container.HostConfig{Binds: []string{"v1:/x", "v2:/x"}}, errdefs.ErrInvalid, "Duplicate mount point: /x"},
		{"relative destination", container.Config{}, container.HostConfig{Binds: []string{"v1:x"}}, errdefs.ErrInvalid, ""},
		{"bad capability", container.Config{}, container.HostConfig{CapAdd: []string{"CAP_NOPE"}}, errdefs.ErrInvalid, ""},
		{"bad ulimit value", container.Config{}, container.HostConfig{Resources: container.Resources{CPUShares: -5}}, errdefs.ErrInvalid, ""},
		{"log driver", container.Config{}, container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}, errdefs.ErrInvalid, "logger: no log driver named 'syslog' is registered"},
		{"no command", container.Config{Entrypoint: []string{""}}, container.HostConfig{}, errdefs.ErrInvalid, "no command specified"},
	}
	for _, c := range cases {
		cfg := c.cfg
		if cfg.Image == "" {
			cfg.Image = busybox
		}
		if c.name == "no command" {
			cfg.Cmd = nil
		}
		_, _, err := v.e.Create(ctx(t), "", &cfg, &c.hc, nil)
		if !errors.Is(err, c.class) {
			t.Errorf("%s: err = %v, want class %v", c.name, err, c.class)
			continue
		}
		if c.msg != "" && err.Error() != c.msg {
			t.Errorf("%s: message %q, want %q", c.name, err, c.msg)
		}
	}
	if des, _ := os.ReadDir(filepath.Join(v.cfg.DataRoot, "containers")); len(des) != 0 {
		t.Errorf("refused creates left %d container directories", len(des))
	}
	if des, _ := os.ReadDir(filepath.Join(v.cfg.ExecRoot, "containers")); len(des) != 0 {
		t.Errorf("refused creates left %d exec directories", len(des))
	}
	if vs, _ := v.e.Volumes().List(ctx(t), nil); len(vs) != 0 {
		t.Errorf("refused creates left volumes %v", vs)
	}
	v.images.Snapshotter().Walk(ctx(t), func(info snapshot.Info) error {
		if info.Kind != snapshot.Committed {
			t.Errorf("refused creates left snapshot %s", info.Name)
		}
		return nil
	})
	if m := mountsBelow(v.root); len(m) != 0 {
		t.Errorf("refused creates left mounts %v", m)
	}
}

// Removing a created container takes its snapshot, directories and
// record; -v takes its anonymous volumes and leaves named ones; a
// volume in use cannot be removed.
func TestRemoveCreated(t *testing.T) {
	v := newEnv(t)
	id := v.create("cc", &container.Config{Volumes: map[string]struct{}{"/anon": {}}}, &container.HostConfig{Binds: []string{"keep:/keep"}})
	r := v.inspect(id)
	var anon string
	for _, m := range r.Mounts {
		if m.Destination == "/anon" {
			anon = m.Name
		}
	}
	if len(anon) != 64 {
		t.Fatalf("no anonymous volume for Config.Volumes: %+v", r.Mounts)
	}
	err := v.e.VolumeRemove(ctx(t), "keep", false)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "remove keep: volume is in use - ["+id+"]" {
		t.Errorf("volume rm in use: %v", err)
	}
	if err := v.e.Remove(ctx(t), "cc", engine.RemoveOptions{RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.images.Snapshotter().Stat(ctx(t), id); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("snapshot left: %v", err)
	}
	for _, d := range []string{filepath.Join(v.cfg.DataRoot, "containers", id), filepath.Join(v.cfg.ExecRoot, "containers", id)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	if v.e.Volumes().Exists(anon) {
		t.Error("rm -v left the anonymous volume")
	}
	if !v.e.Volumes().Exists("keep") {
		t.Error("rm -v removed a named volume")
	}
	if err := v.e.VolumeRemove(ctx(t), "keep", false); err != nil {
		t.Errorf("volume rm after the container went: %v", err)
	}
	if ev := v.eventsOf(id); !slices.Equal(ev, []string{"create", "destroy"}) {
		t.Errorf("events %v", ev)
	}
	if m := mountsBelow(v.root); len(m) != 0 {
		t.Errorf("mounts left %v", m)
	}
	if _, err := v.e.VolumeCreate(ctx(t), volume.CreateRequest{Name: "again"}); err != nil {
		t.Fatal(err)
	}
}

func TestListFilters(t *testing.T) {
	v := newEnv(t)
	a := v.create("alpha", &container.Config{Labels: map[string]string{"app": "x"}}, nil)
	b := v.create("beta", &container.Config{Labels: map[string]string{"app": "y"}}, nil)
	c := v.create("gamma", nil, nil)
	ids := func(f map[string][]string, all bool) []string {
		t.Helper()
		cs, err := v.e.List(ctx(t), engine.ListOptions{All: all, Filters: f})
		if err != nil {
			t.Fatalf("list %v: %v", f, err)
		}
		var out []string
		for _, s := range cs {
			out = append(out, s.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    map[string][]string
		all  bool
		want []string
	}{
		{nil, false, nil},
		{nil, true, []string{c, b, a}},
		{map[string][]string{"status": {"created"}}, false, []string{c, b, a}},
		{map[string][]string{"status": {"running"}}, true, nil},
		{map[string][]string{"name": {"^alpha$"}}, true, []string{a}},
		{map[string][]string{"name": {"a"}}, true, []string{c, b, a}},
		{map[string][]string{"label": {"app"}}, true, []string{b, a}},
		{map[string][]string{"label": {"app=y"}}, true, []string{b}},
		{map[string][]string{"id": {a[:10]}}, true, []string{a}},
		{map[string][]string{"before": {"gamma"}}, true, []string{b, a}},
		{map[string][]string{"since": {"alpha"}}, true, []string{c, b}},
		{map[string][]string{"ancestor": {busybox}}, true, []string{c, b, a}},
	} {
		if got := ids(tc.f, tc.all); !slices.Equal(got, tc.want) {
			t.Errorf("list all=%v %v = %v, want %v", tc.all, tc.f, got, tc.want)
		}
	}
	cs, err := v.e.List(ctx(t), engine.ListOptions{Limit: 1})
	if err != nil || len(cs) != 1 || cs[0].ID != c {
		t.Errorf("latest: %v %v", cs, err)
	}
	s := cs[0]
	if s.Names[0] != "/gamma" || s.Image != busybox || s.Command != "/bin/sh" || s.State != container.StateCreated || s.Status != "Created" || s.HostConfig.NetworkMode != "bridge" {
		t.Errorf("summary %+v", s)
	}
	if _, err := v.e.List(ctx(t), engine.ListOptions{Filters: map[string][]string{"colour": {"x"}}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad filter: %v", err)
	}
	if _, err := v.e.List(ctx(t), engine.ListOptions{Filters: map[string][]string{"status": {"asleep"}}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad status: %v", err)
	}
}
