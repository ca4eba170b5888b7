package rlimit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const childEnv = "BERTH_RLIMIT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		err := Apply([]specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 500, Hard: 2000},
			{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
		})
		if err == nil {
			// The limits must survive Go's own execve, which restores the
			// start-up RLIMIT_NOFILE unless told it was set on purpose.
			err = syscall.Exec("/bin/sh", []string{"sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sc) $(ulimit -Hc)"}, []string{})
		}
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	for name, want := range map[string]int{
		"RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
		"RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
		"RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
		"RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
	} {
		got, err := Parse(name)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, bad := range []string{"RLIMIT_FOO", "nofile", "rlimit_nofile", ""} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("Parse(%q) error = %v, want one naming it", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 2}, {Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY}}
	if err := Validate(ok); err != nil {
		t.Errorf("Validate(%v) = %v", ok, err)
	}
	for _, c := range []struct {
		list []specs.POSIXRlimit
		want string
	}{
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}, {Type: "RLIMIT_NOFILE"}}, "RLIMIT_NOFILE: listed more than once"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 3, Hard: 2}}, "set RLIMIT_NOFILE to 3/2: soft limit above hard limit"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: 0}}, "set RLIMIT_CORE to unlimited/0"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}, {Type: "RLIMIT_BOGUS"}}, `"RLIMIT_BOGUS"`},
	} {
		err := Validate(c.list)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, unix.EINVAL) {
			t.Errorf("Validate(%v) = %v, want EINVAL containing %q", c.list, err, c.want)
		}
		// Apply must refuse the same list before touching a limit.
		if err := Apply(c.list); err == nil {
			t.Errorf("Apply(%v) succeeded", c.list)
		}
	}
}

func TestApplyLowerInChild(t *testing.T) {
	// Start the child with a soft NOFILE below its hard limit, so the Go
	// runtime raises it at start-up and remembers 1024/2000 to restore at
	// exec. The hard limit equals the one applied so that the restore would
	// succeed even without CAP_SYS_RESOURCE if Apply bypassed Go's bookkeeping.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 1024 && ulimit -Hn 2000 && exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != "500 2000 0 0" {
		t.Errorf("limits after Apply and exec (soft/hard nofile, soft/hard core) = %q, want %q", got, "500 2000 0 0")
	}
}

func hasCap(t *testing.T, n uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return eff&(1<<n) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func TestApplyAboveHardLimitExplains(t *testing.T) {
	if hasCap(t, unix.CAP_SYS_RESOURCE) {
		t.Skip("this process has CAP_SYS_RESOURCE: raising the hard limit would succeed")
	}
	var cur unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, nil, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Max == unix.RLIM_INFINITY {
		t.Skip("RLIMIT_NOFILE hard limit is unlimited")
	}
	nrOpen, ok := readNrOpen()
	ask := cur.Max + 1
	if ok && ask > nrOpen {
		t.Skipf("hard limit %d is already fs.nr_open", cur.Max)
	}
	// Failing changes nothing, so the test process itself is safe to use.
	err := Apply([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: ask, Hard: ask}})
	want := fmt.Sprintf("set RLIMIT_NOFILE to %d/%d: hard limit above the host's %d needs CAP_SYS_RESOURCE: operation not permitted", ask, ask, cur.Max)
	if err == nil || err.Error() != want || !errors.Is(err, unix.EPERM) {
		t.Errorf("error = %v\nwant    %s (EPERM)", err, want)
	}

	if ok && nrOpen < unix.RLIM_INFINITY-1 {
		big := nrOpen + 1
		err = Apply([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: big, Hard: big}})
		if err == nil || !strings.Contains(err.Error(), "fs.nr_open") {
			t.Errorf("above nr_open: error = %v", err)
		}
	}
}
