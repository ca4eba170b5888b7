package runtime_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// lifeHookRecord is one line "probe hook" wrote, with its state decoded.
type lifeHookRecord struct {
	report.Hook
	St specs.State
}

// lifeHookKind returns the kind a record's hook was registered as: the
// tests give every hook the environment variable LIFE_HOOK=<kind>.
func (h lifeHookRecord) kind() string {
	for _, e := range h.Env {
		if k, ok := strings.CutPrefix(e, "LIFE_HOOK="); ok {
			return k
		}
	}
	return ""
}

// lifeReadHooks reads the records of a probe hook log; a missing file is
// no record.
func lifeReadHooks(t *testing.T, path string) []lifeHookRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []lifeHookRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var h lifeHookRecord
		if err := json.Unmarshal(sc.Bytes(), &h.Hook); err != nil {
			t.Fatalf("hook log %s: %v: %q", path, err, sc.Text())
		}
		if err := json.Unmarshal(h.State, &h.St); err != nil {
			t.Fatalf("hook state is not an OCI state: %v: %s", err, h.State)
		}
		out = append(out, h)
	}
	return out
}

func lifeKinds(hs []lifeHookRecord) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.kind())
	}
	return out
}

// lifeHook is a "probe hook LOG" hook of the given kind, with an argv[0]
// and an environment of its own.
func lifeHook(path, kind, log string, extra ...string) specs.Hook {
	return specs.Hook{
		Path: path,
		Args: append([]string{"hook-" + kind, "hook", log}, extra...),
		Env:  []string{"LIFE_HOOK=" + kind, "LIFE_SPACES=a b  c"},
	}
}

// TestLifeHooks runs the six kinds of hook and checks when each runs, in
// which namespace, and what it gets: state on stdin, args, env.
func TestLifeHooks(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	probe := fixture.Probe(t)
	hostLog := filepath.Join(t.TempDir(), "hooks.log")
	nsFile := filepath.Join(t.TempDir(), "createcontainer-ns")
	const inLog = "/tmp/hooks.log" // inside the container
	ann := map[string]string{"org.berth.test/hooks": "yes"}
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"), fixture.WithSpec(func(s *specs.Spec) {
		s.Annotations = ann
		s.Hooks = &specs.Hooks{
			Prestart:      []specs.Hook{lifeHook(probe, "prestart", hostLog)},
			CreateRuntime: []specs.Hook{lifeHook(probe, "createRuntime", hostLog)},
			// createContainer: path resolved in the runtime namespace, run
			// in the container's (before pivot_root): the host's probe and
			// log, and a host shell noting its namespaces.
			CreateContainer: []specs.Hook{
				lifeHook(probe, "createContainer", hostLog),
				{Path: "/bin/sh", Args: []string{"sh", "-c", "readlink /proc/self/ns/mnt /proc/self/ns/pid /proc/self/ns/net > " + nsFile}},
			},
			// startContainer: path in the container namespace.
			StartContainer: []specs.Hook{lifeHook("/bin/probe", "startContainer", inLog)},
			Poststart:      []specs.Hook{lifeHook(probe, "poststart", hostLog)},
			Poststop:       []specs.Hook{lifeHook(probe, "poststop", hostLog)},
		}
	}))
	id := lifeID(t)
	containerLog := filepath.Join(b.Rootfs, "tmp", "hooks.log")

	lifeMust(t, r, "create", "--bundle", b.Dir, id)
	pid := r.State(id).Pid
	got := lifeReadHooks(t, hostLog)
	if k := lifeKinds(got); !slices.Equal(k, []string{"prestart", "createRuntime", "createContainer"}) {
		t.Errorf("hooks run by create: %v, want prestart, createRuntime, createContainer", k)
	}
	if in := lifeReadHooks(t, containerLog); len(in) != 0 {
		t.Errorf("startContainer ran before start: %v", lifeKinds(in))
	}
	// The createContainer hook ran in the container's namespaces.
	if data, err := os.ReadFile(nsFile); err != nil {
		t.Errorf("the createContainer shell hook did not run: %v", err)
	} else {
		initNS := lifeNamespaces(t, pid)
		links := strings.Fields(string(data))
		for i, kind := range []string{"mnt", "pid", "net"} {
			want := kind + ":[" + strconv.FormatUint(initNS[kind], 10) + "]"
			if i >= len(links) || links[i] != want {
				t.Errorf("createContainer hook's %s namespace: %v, want the container's %s", kind, links, want)
			}
		}
	}

	lifeMust(t, r, "start", id)
	in := lifeReadHooks(t, containerLog)
	if k := lifeKinds(in); !slices.Equal(k, []string{"startContainer"}) {
		t.Errorf("hooks in the container after start: %v, want startContainer", k)
	}
	got = lifeReadHooks(t, hostLog)
	if k := lifeKinds(got); !slices.Equal(k, []string{"prestart", "createRuntime", "createContainer", "poststart"}) {
		t.Errorf("hooks after start: %v, want poststart added", k)
	}

	lifeMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	if k := lifeKinds(lifeReadHooks(t, hostLog)); slices.Contains(k, "poststop") {
		t.Errorf("poststop ran before delete: %v", k)
	}
	lifeMust(t, r, "delete", id)
	got = lifeReadHooks(t, hostLog)
	if k := lifeKinds(got); !slices.Equal(k, []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"}) {
		t.Errorf("hooks after delete: %v, want poststop added", k)
	}

	// All six in order, by the time each ran.
	all := append(slices.Clone(got[:min(3, len(got))]), in...)
	if len(got) > 3 {
		all = append(all, got[3:]...)
	}
	order := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	if k := lifeKinds(all); !slices.Equal(k, order) {
		t.Fatalf("hooks: %v, want %v", k, order)
	}
	for i := 1; i < len(all); i++ {
		if all[i].TimeNS < all[i-1].TimeNS {
			t.Errorf("%s ran at %d, before %s at %d", all[i].kind(), all[i].TimeNS, all[i-1].kind(), all[i-1].TimeNS)
		}
	}

	wantStatus := map[string]specs.ContainerState{
		"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
		"startContainer": "created", "poststart": "running", "poststop": "stopped",
	}
	for _, h := range all {
		kind := h.kind()
		if h.St.ID != id || h.St.Bundle != b.Dir {
			t.Errorf("%s hook state: id %q bundle %q, want %q %q", kind, h.St.ID, h.St.Bundle, id, b.Dir)
		}
		if h.St.Status != wantStatus[kind] {
			t.Errorf("%s hook state: status %q, want %q", kind, h.St.Status, wantStatus[kind])
		}
		if !strings.HasPrefix(h.St.Version, "1.") {
			t.Errorf("%s hook state: ociVersion %q", kind, h.St.Version)
		}
		if h.St.Annotations["org.berth.test/hooks"] != "yes" {
			t.Errorf("%s hook state: annotations %v, want the spec's %v", kind, h.St.Annotations, ann)
		}
		// The pid as seen from where the hook runs.
		switch kind {
		case "prestart", "createRuntime", "poststart":
			if h.St.Pid != pid {
				t.Errorf("%s hook state: pid %d, want the init's host pid %d", kind, h.St.Pid, pid)
			}
		case "createContainer", "startContainer":
			if h.St.Pid != 1 {
				t.Errorf("%s hook state: pid %d, want 1, the init as the container sees it", kind, h.St.Pid)
			}
		}
		logArg := hostLog
		if kind == "startContainer" {
			logArg = inLog
		}
		if want := []string{"hook-" + kind, "hook", logArg}; !slices.Equal(h.Argv, want) {
			t.Errorf("%s hook argv %q, want %q (argv[0] from args[0])", kind, h.Argv, want)
		}
		if want := []string{"LIFE_HOOK=" + kind, "LIFE_SPACES=a b  c"}; !slices.Equal(h.Env, want) {
			t.Errorf("%s hook environment %q, want exactly %q", kind, h.Env, want)
		}
	}
}

// TestLifeHooksRun checks the hooks of a foreground run: poststop runs
// after the container exits, when run deletes it.
func TestLifeHooksRun(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	probe := fixture.Probe(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "exit", "0"), fixture.WithSpec(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:  []specs.Hook{lifeHook(probe, "prestart", log)},
			Poststart: []specs.Hook{lifeHook(probe, "poststart", log)},
			Poststop:  []specs.Hook{lifeHook(probe, "poststop", log)},
		}
	}))
	res := lifeRun(t, r, "run", "--bundle", b.Dir, lifeID(t))
	if res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	if k := lifeKinds(lifeReadHooks(t, log)); !slices.Equal(k, []string{"prestart", "poststart", "poststop"}) {
		t.Errorf("hooks of a foreground run: %v, want prestart, poststart, poststop", k)
	}
}

// TestLifeHookFailures checks that a failing or hanging create-time hook
// fails create, names the hook, and leaves nothing behind.
func TestLifeHookFailures(t *testing.T) {
	t.Parallel()
	one := 1
	for _, tc := range []struct {
		name    string
		hooks   func(probe, log string) *specs.Hooks
		want    []string
		maxTime time.Duration
	}{
		{"prestart-exit-1", func(probe, log string) *specs.Hooks {
			return &specs.Hooks{Prestart: []specs.Hook{lifeHook(probe, "prestart", log, "1")}}
		}, []string{"prestart"}, 0},
		{"createRuntime-exit-1", func(probe, log string) *specs.Hooks {
			return &specs.Hooks{CreateRuntime: []specs.Hook{lifeHook(probe, "createRuntime", log, "1")}}
		}, []string{"createRuntime"}, 0},
		{"createContainer-exit-1", func(probe, log string) *specs.Hooks {
			return &specs.Hooks{CreateContainer: []specs.Hook{lifeHook(probe, "createContainer", log, "1")}}
		}, []string{"createContainer"}, 0},
		// The hook would sleep a minute: a create that ends well before
		// shows the timeout killed it. The bound is loose, for guests
		// under software emulation (make test-vm), where a create with
		// parallel tests takes seconds.
		{"prestart-timeout", func(probe, log string) *specs.Hooks {
			h := lifeHook(probe, "prestart", log, "0", "60")
			h.Timeout = &one
			return &specs.Hooks{Prestart: []specs.Hook{h}}
		}, []string{"prestart", "time"}, 30 * time.Second},
		{"missing-hook-binary", func(probe, log string) *specs.Hooks {
			return &specs.Hooks{Prestart: []specs.Hook{{Path: "/no/such/hook"}}}
		}, []string{"/no/such/hook"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			log := filepath.Join(t.TempDir(), "hooks.log")
			cg := lifeUniqueCgroup(t)
			b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"), fixture.WithSpec(func(s *specs.Spec) {
				s.Linux.CgroupsPath = cg
				s.Hooks = tc.hooks(fixture.Probe(t), log)
			}))
			id := lifeID(t)
			base := lifeMountsUnder(t, b.Dir)
			res := lifeFail(t, r, tc.want, "create", "--bundle", b.Dir, id)
			if tc.maxTime > 0 && res.Elapsed > tc.maxTime {
				t.Errorf("create with a hook timing out after 1 s took %s: the hook was not killed", res.Elapsed)
			}
			lifeNoLeftovers(t, r, id, cg, b.Dir, base)
		})
	}
}

// TestLifePoststopFailureIsWarning checks that a failing poststop hook does
// not stop delete: the spec asks for a warning, and the container is gone.
func TestLifePoststopFailureIsWarning(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"), fixture.WithSpec(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststop: []specs.Hook{lifeHook(fixture.Probe(t), "poststop", log, "1")}}
	}))
	id := lifeID(t)
	lifeStart(t, r, b, id)
	lifeMust(t, r, "kill", id, "KILL")
	r.WaitStatus(id, "stopped", 10*time.Second)
	// The spec: a failing poststop hook is logged as a warning; the
	// delete goes on.
	res := lifeRun(t, r, "delete", id)
	if k := lifeKinds(lifeReadHooks(t, log)); !slices.Equal(k, []string{"poststop"}) {
		t.Errorf("poststop hooks run: %v", k)
	}
	if err := lifeStateErr(r, id); err == nil {
		t.Errorf("container still exists after delete with a failing poststop hook (%s)", res)
	}
	lifeWantMsg(t, "delete stderr", res.Stderr, "poststop")
}

// TestLifePoststartFailureStops checks the spec's lifecycle step 9: a
// failing poststart hook makes start fail and stops the container, which is
// left for delete.
func TestLifePoststartFailureStops(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	cg := lifeUniqueCgroup(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"), fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.CgroupsPath = cg
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{lifeHook(fixture.Probe(t), "poststart", log, "1")}}
	}))
	id := lifeID(t)
	r.Must("create", "--bundle", b.Dir, id)
	_, stderr, err := r.Exec("start", id)
	if err == nil {
		t.Fatal("start succeeded although the poststart hook failed")
	}
	if !strings.Contains(stderr, "poststart") {
		t.Errorf("start error does not name the poststart hook: %s", stderr)
	}
	r.WaitStatus(id, "stopped", 10*time.Second)
	r.Must("delete", id)
	lifeNoLeftovers(t, r, id, cg, "", nil)
}
