package peers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/runtimetest"
)

// runtimeToolsVersion pins the OCI's runtime-tools, whose validation/
// programs are the spec's own conformance suite (TAP output, one program
// per area, each driving the runtime named by $RUNTIME through create,
// start, state, kill and delete, with its runtimetest checker inside).
const runtimeToolsVersion = "v0.9.1-0.20251114084447-edf4cb3d2116"

// runtimeToolsSkipped are the suite's programs not run, and why.
var runtimeToolsSkipped = map[string]string{
	// A container without a mount namespace: berth-runtime refuses it
	// (docs/runtime.md), and runc makes its mounts in the host's mount
	// table, where they stay after the container.
	"linux_ns_itype": "no mount namespace",
}

// TestRuntimeToolsValidation runs runtime-tools' validation suite against
// berth-runtime and against runc on the same host, one after the other,
// and fails for each assertion runc passes and berth-runtime does not.
// What fails under both (the suite's own faults, what the host lacks) is
// logged. Both runtimes run with a --root of the test's, so the suite's
// containers are counted: berth-runtime must leave none.
func TestRuntimeToolsValidation(t *testing.T) {
	paths := requireTools(t, "runc", "tar")
	if runtimetest.SystemdCgroup() {
		t.Skip("the suite's cgroupsPath values are cgroupfs paths")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go toolchain to build runtime-tools' suite")
	}
	suite := buildRuntimeTools(t)
	dir := t.TempDir()
	runc := runtimeWrapper(t, dir, "runc", paths[0])
	berth := runtimeWrapper(t, dir, "berth", runtimetest.Binary(t))
	t.Cleanup(func() {
		for _, rt := range []string{runc, berth} {
			out, _ := exec.Command(rt, "list", "-q").Output()
			for _, id := range strings.Fields(string(out)) {
				exec.Command(rt, "delete", "--force", id).Run()
			}
		}
		removeSuiteCgroups()
	})

	for _, name := range suite.tests {
		if why, ok := runtimeToolsSkipped[name]; ok {
			t.Logf("%s: not run: %s", name, why)
			continue
		}
		want := suite.run(t, name, runc)
		got := suite.run(t, name, berth)
		if want.code != 0 && got.code == 0 {
			// The program fails under runc (process_capabilities_fail:
			// runc accepts a capability that does not exist): its
			// assertions under runc are no reference.
			t.Logf("%s: passes under berth-runtime, fails under runc (exit %d)", name, want.code)
			continue
		}
		missed := tapMissed(want, got)
		if len(missed) > 0 {
			// The suite waits on fixed timeouts: one more try tells a
			// slow host from a failure.
			t.Logf("%s: %d assertions missed, trying once more", name, len(missed))
			got = suite.run(t, name, berth)
			missed = tapMissed(want, got)
		}
		for _, m := range missed {
			t.Errorf("%s: runc passes %q, berth-runtime does not:\n%s", name, m, clip(got.text))
		}
		var both []string
		for key, ok := range got.results {
			if !ok && !want.results[key] {
				both = append(both, key)
			}
		}
		slices.Sort(both)
		if len(both) > 0 {
			t.Logf("%s: fails under both runtimes: %q", name, both)
		}
	}
	out, err := exec.Command(berth, "list", "-q").Output()
	if err != nil {
		t.Fatalf("berth-runtime list: %v", err)
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		t.Errorf("the suite's containers left in berth-runtime's root: %q", ids)
	}
}

// runtimeTools is a built suite: its programs, the runtimetest checker
// and the busybox rootfs tarball every bundle is made from.
type runtimeTools struct {
	dir   string // holds runtimetest and rootfs-<arch>.tar.gz: the programs' working directory
	bin   string // the programs, by name
	tests []string
	tmp   string // TMPDIR of the programs (their bundles)
}

// buildRuntimeTools fetches runtime-tools at runtimeToolsVersion through
// the module proxy and builds the suite, into the test cache directory so
// that later runs reuse it.
func buildRuntimeTools(t *testing.T) *runtimeTools {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "berth-test", "runtime-tools-"+runtimeToolsVersion+"-"+runtime.Version())
	// The bundles' directory is searchable by all: the suite maps the
	// container's root to an unprivileged user in its user namespace
	// tests (t.TempDir is 0700).
	tmp, err := os.MkdirTemp("", "berth-runtime-tools-")
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	s := &runtimeTools{dir: out, bin: filepath.Join(out, "validation"), tmp: tmp}
	if _, err := os.Stat(filepath.Join(out, "done")); err != nil {
		t.Logf("building runtime-tools %s into %s", runtimeToolsVersion, out)
		start := time.Now()
		buildRuntimeToolsInto(t, out)
		t.Logf("built in %v", time.Since(start).Round(time.Millisecond))
	}
	des, err := os.ReadDir(s.bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		s.tests = append(s.tests, de.Name())
	}
	if len(s.tests) < 40 {
		t.Fatalf("runtime-tools built %d validation programs, want the suite's 50 or more", len(s.tests))
	}
	return s
}

func buildRuntimeToolsInto(t *testing.T, out string) {
	t.Helper()
	dl, err := exec.Command("go", "mod", "download", "-json", "github.com/opencontainers/runtime-tools@"+runtimeToolsVersion).Output()
	if err != nil {
		t.Fatalf("go mod download runtime-tools: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(dl, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download runtime-tools: no directory in %s", dl)
	}
	// The module cache is read-only and the module's vendor/ is partial:
	// build a writable copy against the module proxy.
	src := filepath.Join(t.TempDir(), "runtime-tools")
	for _, args := range [][]string{{"cp", "-r", mod.Dir, src}, {"chmod", "-R", "u+w", src}, {"rm", "-rf", filepath.Join(src, "vendor")}} {
		if b, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", args, err, b)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out, "validation"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	for _, args := range [][]string{
		{"go", "build", "-o", filepath.Join(out, "runtimetest"), "-tags", "netgo osusergo", "./cmd/runtimetest"},
		{"go", "build", "-o", filepath.Join(out, "validation") + "/", "./validation/..."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = src, append(env, "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q in runtime-tools: %v: %s", args, err, b)
		}
	}
	tarball := "rootfs-" + runtime.GOARCH + ".tar.gz"
	if b, err := exec.Command("cp", filepath.Join(src, tarball), filepath.Join(out, tarball)).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", tarball, err, b)
	}
	if err := os.WriteFile(filepath.Join(out, "done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runtimeWrapper is a program that runs the runtime at path with a --root
// of the test's: the suite names its runtime by one path, with no flags.
func runtimeWrapper(t *testing.T, dir, name, path string) string {
	t.Helper()
	w := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\nexec %q --root %q \"$@\"\n", path, filepath.Join(dir, name+"-root"))
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// tapRun is how one validation program ended under one runtime.
type tapRun struct {
	// results holds every assertion by its description (with "#N"
	// appended to the Nth repeat of one).
	results map[string]bool
	code    int
	text    string
}

// run runs the validation program name with the runtime wrapper rt.
func (s *runtimeTools) run(t *testing.T, name, rt string) tapRun {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name))
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "RUNTIME="+rt, "TMPDIR="+s.tmp)
	r := run(cmd, 3*time.Minute)
	if r.code < 0 {
		t.Errorf("%s under %s: %v", name, filepath.Base(rt), r.err)
	}
	text := r.stdout + r.stderr
	res := tapRun{results: map[string]bool{}, code: r.code, text: text}
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		ok := strings.HasPrefix(line, "ok ")
		if !ok && !strings.HasPrefix(line, "not ok ") {
			continue
		}
		// "ok 3 - description" or "not ok 3 - description".
		desc := line
		if i := strings.Index(line, " - "); i >= 0 {
			desc = line[i+3:]
		}
		if n := seen[desc]; n > 0 {
			seen[desc]++
			desc = fmt.Sprintf("%s #%d", desc, n+1)
		} else {
			seen[desc] = 1
		}
		res.results[desc] = ok
	}
	return res
}

// tapMissed lists the assertions want passed and got did not (failed or
// never reached).
func tapMissed(want, got tapRun) []string {
	var out []string
	for key, ok := range want.results {
		if ok && !got.results[key] {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// removeSuiteCgroups removes the parents of the suite's relative
// cgroupsPath (testdir/cgrouptest/container): the runtimes remove the
// container's own cgroup, runc and berth-runtime alike, never its parents.
func removeSuiteCgroups() {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	hs = append(hs, "/sys/fs/cgroup")
	for _, h := range hs {
		os.Remove(filepath.Join(h, "testdir", "cgrouptest"))
		os.Remove(filepath.Join(h, "testdir"))
	}
}
