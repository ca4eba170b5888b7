package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseTestPkgs(t *testing.T) {
	out := "github.com/berth-project/berth/internal/linux/cgroups\t/m/internal/linux/cgroups\t3\t0\tos,testing,\n" +
		"github.com/berth-project/berth/test/runtimetest\t/m/test/runtimetest\t0\t0\t,\n" +
		"github.com/berth-project/berth/test/runtime\t/m/test/runtime\t0\t11\t,os," + runtimetestPkg + ",testing\n"
	pkgs, err := parseTestPkgs(out, "/m")
	if err != nil {
		t.Fatal(err)
	}
	want := []testPkg{
		{"github.com/berth-project/berth/internal/linux/cgroups", "internal/linux/cgroups", "internal_linux_cgroups.test", false},
		{"github.com/berth-project/berth/test/runtime", "test/runtime", "test_runtime.test", true},
	}
	if len(pkgs) != len(want) || pkgs[0] != want[0] || pkgs[1] != want[1] {
		t.Errorf("parseTestPkgs = %+v, want %+v", pkgs, want)
	}
	if _, err := parseTestPkgs("x\t/elsewhere/x\t1\t0\t,\n", "/m"); err == nil {
		t.Error("package outside the module: no error")
	}
	if _, err := parseTestPkgs("garbage\n", "/m"); err == nil {
		t.Error("bad line: no error")
	}
}

func TestSuiteScript(t *testing.T) {
	pkgs := []testPkg{
		{"example.com/m/test/runtime", "test/runtime", "test_runtime.test", true},
		{"example.com/m/internal/x", "internal/x", "internal_x.test", false},
	}
	s := suiteScript(pkgs, true, 20*time.Minute, []string{"-test.run", "TestA|TestB"}, true)
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(s)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s\n%s", err, out, s)
	}
	for _, want := range []string{
		"BERTH_RUNTIME=" + guestBin + "/berth-runtime",
		"BERTH_TEST_PROBE=" + guestBin + "/probe",
		"BERTH_TEST_REQUIRE_FIXTURES=1",
		"pkg example.com/m/test/runtime " + guestBin + "/tests/test_runtime.test " + guestSrc + "/test/runtime -test.timeout=20m0s -test.v -test.run 'TestA|TestB'",
		"export BERTH_TEST_SYSTEMD_CGROUP=1\npkg 'example.com/m/test/runtime (--systemd-cgroup)' " + guestBin + "/tests/test_runtime.test ",
		"exit $rc",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// Only the package that drives the runtime runs twice.
	if n := strings.Count(s, "internal_x.test"); n != 1 {
		t.Errorf("internal/x runs %d times, want once:\n%s", n, s)
	}
	if s := suiteScript(pkgs, false, time.Minute, nil, false); strings.Contains(s, "SYSTEMD") {
		t.Errorf("systemd pass without asking:\n%s", s)
	}
}

// TestSuiteScriptRuns runs the script's pkg function on the host with
// stand-in test binaries: a pass and a failure give go test's summary
// lines and exit status 1.
func TestSuiteScriptRuns(t *testing.T) {
	s := suiteScript(nil, false, time.Minute, nil, false)
	// Keep the helpers, drop the guest-only set-up and the final exit.
	helpers := s[strings.Index(s, "rc=0"):strings.Index(s, "[ $rc -eq 0 ]")]
	script := helpers + "pkg good true /\npkg bad false /\necho rc=$rc\n"
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ok  \tgood\t") || !strings.HasPrefix(lines[1], "FAIL\tbad\t") || lines[2] != "rc=1" {
		t.Errorf("output %q", lines)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"run"}, {"test", "--no-such-flag"}} {
		var stdout, stderr bytes.Buffer
		if code := runCLI(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr.String())
		}
	}
}
