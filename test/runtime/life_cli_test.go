package runtime_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// TestLifeList checks list's three output forms against two containers, one
// created and one running.
func TestLifeList(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	if out := r.Must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("list -q with no container: %q", out)
	}
	var empty []any
	lifeDecode(t, "list --format json (empty)", r.Must("list", "--format", "json"), &empty)
	if len(empty) != 0 {
		t.Errorf("list --format json with no container: %v", empty)
	}

	b1 := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	b2 := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"))
	id1, id2 := lifeID(t), lifeID(t)
	pid1 := lifeStart(t, r, b1, id1)
	lifeMust(t, r, "create", "--bundle", b2.Dir, id2)
	pid2 := r.State(id2).Pid
	want := map[string]struct {
		pid    int
		status string
		bundle string
	}{id1: {pid1, "running", b1.Dir}, id2: {pid2, "created", b2.Dir}}

	// Table.
	lines := strings.Split(strings.TrimRight(r.Must("list"), "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}) {
		t.Errorf("list header %q, want ID PID STATUS BUNDLE CREATED OWNER", lines[0])
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Errorf("list row %q: %d columns, want 6", l, len(f))
			continue
		}
		rows[f[0]] = f
	}
	if len(rows) != 2 {
		t.Errorf("list rows %v, want 2", lines[1:])
	}
	for id, w := range want {
		f, ok := rows[id]
		if !ok {
			t.Errorf("list has no row for %s", id)
			continue
		}
		if f[1] != strconv.Itoa(w.pid) || f[2] != w.status || f[3] != w.bundle {
			t.Errorf("list row %v, want pid %d status %s bundle %s", f, w.pid, w.status, w.bundle)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[4]); err != nil {
			t.Errorf("list row %v: CREATED %q is not RFC 3339: %v", f, f[4], err)
		}
	}

	// Quiet.
	ids := lifeListIDs(t, r)
	sort.Strings(ids)
	wantIDs := []string{id1, id2}
	sort.Strings(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("list -q: %v, want %v", ids, wantIDs)
	}

	// JSON.
	var js []map[string]any
	lifeDecode(t, "list --format json", r.Must("list", "--format", "json"), &js)
	if len(js) != 2 {
		t.Fatalf("list --format json: %d entries, want 2: %v", len(js), js)
	}
	for _, e := range js {
		id, _ := e["id"].(string)
		w, ok := want[id]
		if !ok {
			t.Errorf("list --format json: unexpected entry %v", e)
			continue
		}
		pid, _ := e["pid"].(float64)
		if int(pid) != w.pid || e["status"] != w.status || e["bundle"] != w.bundle {
			t.Errorf("list --format json entry %v, want pid %d status %s bundle %s", e, w.pid, w.status, w.bundle)
		}
	}
	lifeFail(t, r, nil, "list", "--format", "yaml")
}

// TestLifeStateJSON checks the fields of state's output, annotations
// included.
func TestLifeStateJSON(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	ann := map[string]string{"org.berth.test/one": "1", "org.berth.test/two": "two words"}
	b := fixture.Bundle(t, fixture.WithArgs("/bin/probe", "sleep", "1000"),
		fixture.WithSpec(func(s *specs.Spec) { s.Annotations = ann }))
	id := lifeID(t)
	before := time.Now()
	lifeMust(t, r, "create", "--bundle", b.Dir, id)

	var st map[string]json.RawMessage
	out := r.Must("state", id)
	lifeDecode(t, "state", out, &st)
	for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations"} {
		if _, ok := st[k]; !ok {
			t.Errorf("state has no %q: %s", k, out)
		}
	}
	var s struct {
		OCIVersion  string            `json:"ociVersion"`
		ID          string            `json:"id"`
		Pid         int               `json:"pid"`
		Status      string            `json:"status"`
		Bundle      string            `json:"bundle"`
		Rootfs      string            `json:"rootfs"`
		Created     time.Time         `json:"created"`
		Annotations map[string]string `json:"annotations"`
	}
	lifeDecode(t, "state", out, &s)
	if !strings.HasPrefix(s.OCIVersion, "1.") {
		t.Errorf("ociVersion %q, want 1.x", s.OCIVersion)
	}
	if s.ID != id || s.Status != "created" || s.Pid <= 0 || s.Bundle != b.Dir || s.Rootfs != b.Rootfs {
		t.Errorf("state %+v, want id %s created pid>0 bundle %s rootfs %s", s, id, b.Dir, b.Rootfs)
	}
	if s.Created.Before(before.Add(-time.Second)) || s.Created.After(time.Now().Add(time.Second)) {
		t.Errorf("created %s is not the time of create (%s)", s.Created, before)
	}
	if len(s.Annotations) != len(ann) {
		t.Errorf("annotations %v, want %v", s.Annotations, ann)
	}
	for k, v := range ann {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	// A relative --bundle is recorded absolute.
	id2 := lifeID(t)
	cmd := r.Command("create", "--bundle", ".", id2)
	cmd.Dir = b.Dir
	if res := lifeRunCmd(t, cmd, time.Minute); res.Code != 0 {
		t.Fatalf("create with --bundle .: %s", res)
	}
	if s2 := r.State(id2); s2.Bundle != b.Dir {
		t.Errorf("bundle of a container created with --bundle . from %s: %q", b.Dir, s2.Bundle)
	}
	lifeFail(t, r, []string{"does not exist"}, "state", "no-such-container")
}

// TestLifePs checks ps in its table and JSON forms against the container's
// pids cgroup.
func TestLifePs(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t, fixture.WithArgs("/bin/sh", "-c", "/bin/probe sleep 1000 & exec /bin/probe sleep 1000"))
	id := lifeID(t)
	pid := lifeStart(t, r, b, id)

	// The v1 pids hierarchy, or on a cgroup v2 host the single hierarchy.
	var pidsDir, unifiedDir string
	for _, c := range lifeCgroupsOf(t, pid) {
		if slices.Contains(strings.Split(c.Controllers, ","), "pids") {
			pidsDir = c.Dir
		}
		if c.Controllers == "" {
			unifiedDir = c.Dir
		}
	}
	if pidsDir == "" {
		pidsDir = unifiedDir
	}
	if pidsDir == "" {
		t.Fatalf("init %d has no pids cgroup", pid)
	}
	readProcs := func() []int {
		data, err := os.ReadFile(filepath.Join(pidsDir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, f := range strings.Fields(string(data)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		sort.Ints(out)
		return out
	}
	// Wait for the background child to exist.
	deadline := time.Now().Add(10 * time.Second)
	for len(readProcs()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	procs := readProcs()
	var pids []int
	lifeDecode(t, "ps --format json", r.Must("ps", "--format", "json", id), &pids)
	sort.Ints(pids)
	if !slices.Equal(pids, procs) || len(pids) != 2 {
		t.Errorf("ps --format json: %v, want the 2 pids of %s/cgroup.procs: %v", pids, pidsDir, procs)
	}

	out := r.Must("ps", id)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		t.Fatalf("ps table has no PID column: %q", out)
	}
	var got []int
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col {
			n, _ := strconv.Atoi(f[col])
			got = append(got, n)
		}
	}
	sort.Ints(got)
	if !slices.Contains(got, pid) || !slices.Equal(got, procs) {
		t.Errorf("ps table lists pids %v, want the init %d among exactly %v:\n%s", got, pid, procs, out)
	}
	lifeFail(t, r, nil, "ps", "no-such-container")
}

// TestLifeLogJSON checks --log with --log-format json: containerd reads the
// last "error" line of this file to report why the runtime failed.
func TestLifeLogJSON(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"start-missing", []string{"start", "no-such-container"}, "no-such-container"},
		{"create-bad-config", nil, "config.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(dir, tc.name+".log")
			args := tc.args
			if args == nil {
				b := fixture.Bundle(t)
				if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte("{not json"), 0o644); err != nil {
					t.Fatal(err)
				}
				args = []string{"create", "--bundle", b.Dir, lifeID(t)}
			}
			res := lifeRun(t, r, append([]string{"--log", log, "--log-format", "json"}, args...)...)
			if res.Code == 0 {
				t.Fatalf("%v succeeded", args)
			}
			data, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("log file: %v", err)
			}
			found := false
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var e map[string]any
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Errorf("log line is not JSON: %q: %v", sc.Text(), err)
					continue
				}
				msg, _ := e["msg"].(string)
				if e["level"] == "error" && msg != "" {
					found = true
					lifeWantMsg(t, "error log line", msg, tc.want)
				}
			}
			if !found {
				t.Errorf("no {\"level\":\"error\",\"msg\":...} line in the log:\n%s", data)
			}
		})
	}
}

// TestLifeSpec checks that spec writes a config.json that run accepts, and
// that it refuses to overwrite one.
func TestLifeSpec(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	cfg := filepath.Join(b.Dir, "config.json")
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	lifeMust(t, r, "spec", "--bundle", b.Dir)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatalf("spec wrote no config.json: %v", err)
	}
	var spec specs.Spec
	lifeDecode(t, "config.json from spec", string(data), &spec)
	if spec.Process == nil || spec.Root == nil || spec.Root.Path != "rootfs" || spec.Linux == nil {
		t.Fatalf("spec's config.json lacks process, root \"rootfs\" or linux: %s", data)
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		t.Errorf("spec's ociVersion %q", spec.Version)
	}

	// Refuses to overwrite, and leaves the file alone.
	lifeFail(t, r, []string{"exist"}, "spec", "--bundle", b.Dir)
	if again, _ := os.ReadFile(cfg); !bytes.Equal(again, data) {
		t.Errorf("a refused spec changed config.json")
	}

	spec.Process.Terminal = false
	spec.Process.Args = []string{"/bin/probe", "report"}
	out, err := json.Marshal(&spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, out, 0o644); err != nil {
		t.Fatal(err)
	}
	id := lifeID(t)
	res := lifeRun(t, r, "run", "--bundle", b.Dir, id)
	if res.Code != 0 {
		t.Fatalf("run of spec's config.json: %s", res)
	}
	var rep struct {
		PID      int    `json:"pid"`
		Hostname string `json:"hostname"`
	}
	lifeDecode(t, "probe report", res.Stdout, &rep)
	if rep.PID != 1 {
		t.Errorf("probe pid %d in the spec's container, want 1", rep.PID)
	}
	if spec.Hostname != "" && rep.Hostname != spec.Hostname {
		t.Errorf("hostname %q, want the spec's %q", rep.Hostname, spec.Hostname)
	}

	// spec in the working directory by default.
	dir := t.TempDir()
	cmd := r.Command("spec")
	cmd.Dir = dir
	if res := lifeRunCmd(t, cmd, time.Minute); res.Code != 0 {
		t.Fatalf("spec in the working directory: %s", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Errorf("spec without --bundle: %v", err)
	}
}

// TestLifeFeatures checks the features document runc users and containerd
// read.
func TestLifeFeatures(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	out := r.Must("features")
	var f struct {
		OCIVersionMin string   `json:"ociVersionMin"`
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		MountOptions  []string `json:"mountOptions"`
		Linux         *struct {
			Namespaces   []string `json:"namespaces"`
			Capabilities []string `json:"capabilities"`
		} `json:"linux"`
	}
	lifeDecode(t, "features", out, &f)
	if !strings.HasPrefix(f.OCIVersionMax, "1.") {
		t.Errorf("ociVersionMax %q, want 1.x", f.OCIVersionMax)
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !slices.Contains(f.Hooks, h) {
			t.Errorf("features.hooks %v lacks %s", f.Hooks, h)
		}
	}
	if f.Linux == nil {
		t.Fatalf("features has no linux section: %s", out)
	}
	for _, ns := range []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} {
		if !slices.Contains(f.Linux.Namespaces, ns) {
			t.Errorf("features.linux.namespaces %v lacks %s", f.Linux.Namespaces, ns)
		}
	}
	if !slices.Contains(f.Linux.Capabilities, "CAP_SYS_ADMIN") {
		t.Errorf("features.linux.capabilities lacks CAP_SYS_ADMIN: %v", f.Linux.Capabilities)
	}
	if !slices.Contains(f.MountOptions, "ro") {
		t.Errorf("features.mountOptions lacks ro: %v", f.MountOptions)
	}
}

// TestLifeVersion checks --version and -v.
func TestLifeVersion(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	for _, flag := range []string{"--version", "-v"} {
		out := r.Must(flag)
		if !strings.Contains(out, "berth-runtime version") || !strings.Contains(out, "spec: 1.") {
			t.Errorf("%s: %q, want \"berth-runtime version\" and \"spec: 1.\"", flag, out)
		}
	}
}
