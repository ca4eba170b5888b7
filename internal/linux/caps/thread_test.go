package caps

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv names the scenario a re-executed test binary runs instead of the
// tests. The child changes credentials of its main thread and execs from it,
// exactly as the container init does, so nothing leaks into the test process.
const childEnv = "BERTH_CAPS_TEST_CHILD"

func init() {
	if os.Getenv(childEnv) != "" {
		// In an init function the main goroutine is still on the main
		// thread: lock it there for the child's whole life.
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		if err := runChild(scenario); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0) // not reached: runChild ends in execve
	}
	os.Exit(m.Run())
}

func set(caps ...int) Set {
	var s Set
	for _, c := range caps {
		s = s.With(c)
	}
	return s
}

// userSets is a reduced configuration for a non-root user: CAP_SYS_ADMIN is
// ambient but neither permitted nor inheritable, so Apply must skip it.
var userSets = Sets{
	Bounding:    set(unix.CAP_CHOWN, unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_RAW, unix.CAP_SETUID),
	Permitted:   set(unix.CAP_CHOWN, unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE),
	Effective:   set(unix.CAP_CHOWN, unix.CAP_NET_BIND_SERVICE),
	Inheritable: set(unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE),
	Ambient:     set(unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_ADMIN),
}

// rootSets is Docker's default for a root process, plus CAP_KILL
// inheritable (but not ambient) so the ambient clear is observable.
var rootSets = func() Sets {
	d := set(unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
		unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP,
		unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE)
	return Sets{Bounding: d, Permitted: d, Effective: d, Inheritable: set(unix.CAP_KILL)}
}()

func runChild(scenario string) error {
	// Give the runtime's thread what a careless runtime might pass on
	// (CVE-2022-29162): inheritable and ambient capabilities and an extra
	// group. Apply and SwitchUser must wipe all of them. In the root
	// scenario CAP_KILL stays permitted and inheritable and the uid stays 0,
	// so only Apply's explicit clear removes it from the ambient set: the
	// kernel itself drops ambient capabilities that leave permitted or
	// inheritable, and all of them on a switch from uid 0 to another.
	cur, err := Current()
	if err != nil {
		return err
	}
	polluted := cur
	polluted.Inheritable = set(unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_KILL) & cur.Bounding
	polluted.Ambient = polluted.Inheritable
	if err := Apply(polluted); err != nil {
		return fmt.Errorf("pollute: %w", err)
	}
	if err := rawSetgroups([]uint32{4242}); err != nil {
		return fmt.Errorf("pollute: %w", err)
	}

	var uid, gid uint32
	var groups []uint32
	sets := rootSets
	if scenario == "user" {
		uid, gid, groups, sets = 1000, 1000, []uint32{1001, 1002}, userSets
	}
	if err := DropBounding(sets.Bounding); err != nil {
		return err
	}
	if err := SwitchUser(uid, gid, groups, true); err != nil {
		return err
	}
	if err := Apply(sets); err != nil {
		return err
	}

	self, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	fmt.Printf("== thread\n%s", self)
	// Another thread of this process keeps root: the switch was this
	// thread's only, which is why the init must exec from it.
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	tid := strconv.Itoa(unix.Gettid())
	for _, p := range tasks {
		if filepath.Base(filepath.Dir(p)) == tid {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			fmt.Printf("== other\n%s", b)
			break
		}
	}
	fmt.Printf("== exec\n")
	return syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, []string{})
}

// parseStatus splits the child's output into sections of status fields.
func parseStatus(t *testing.T, out string) map[string]map[string]string {
	t.Helper()
	sections := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "== "); ok {
			cur = map[string]string{}
			sections[name] = cur
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && cur != nil {
			cur[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return sections
}

func runScenario(t *testing.T, scenario string) map[string]map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes uid, groups and capability sets in a child process")
	}
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if need := set(unix.CAP_SETPCAP, unix.CAP_SETUID, unix.CAP_SETGID); cur.Effective&need != need {
		t.Skipf("needs %s in the effective set, have %s", need, cur.Effective)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+scenario)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s\n%s", err, stderr.String(), out)
	}
	sections := parseStatus(t, string(out))
	for _, s := range []string{"thread", "exec"} {
		if len(sections[s]) == 0 {
			t.Fatalf("no %q section in child output:\n%s", s, out)
		}
	}
	return sections
}

func hex(s Set) string { return fmt.Sprintf("%016x", uint64(s)) }

func checkFields(t *testing.T, where string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", where, k, got[k], v)
		}
	}
}

func TestSwitchUserAndApply(t *testing.T) {
	sec := runScenario(t, "user")
	s := userSets
	checkFields(t, "thread", sec["thread"], map[string]string{
		"Uid":    "1000 1000 1000 1000",
		"Gid":    "1000 1000 1000 1000",
		"Groups": "1001 1002",
		"CapBnd": hex(s.Bounding),
		"CapPrm": hex(s.Permitted),
		"CapEff": hex(s.Effective),
		"CapInh": hex(s.Inheritable),
		"CapAmb": hex(set(unix.CAP_NET_BIND_SERVICE)),
	})
	// After execve of a file without file capabilities by a non-root user,
	// permitted and effective become the ambient set (capabilities(7)).
	amb := hex(set(unix.CAP_NET_BIND_SERVICE))
	checkFields(t, "after exec", sec["exec"], map[string]string{
		"Uid":    "1000 1000 1000 1000",
		"Gid":    "1000 1000 1000 1000",
		"Groups": "1001 1002",
		"CapBnd": hex(s.Bounding),
		"CapPrm": amb,
		"CapEff": amb,
		"CapInh": hex(s.Inheritable),
		"CapAmb": amb,
	})
	if other := sec["other"]; other != nil && other["Uid"] != "0 0 0 0" {
		t.Errorf("another thread's Uid = %q: the switch was meant for the calling thread only", other["Uid"])
	}
}

func TestApplyRootDropsInheritedSets(t *testing.T) {
	sec := runScenario(t, "root")
	s := rootSets
	want := map[string]string{
		"Uid":    "0 0 0 0",
		"Gid":    "0 0 0 0",
		"Groups": "",
		"CapBnd": hex(s.Bounding),
		"CapPrm": hex(s.Permitted),
		"CapEff": hex(s.Effective),
		"CapInh": hex(s.Inheritable),
		"CapAmb": hex(0),
	}
	checkFields(t, "thread", sec["thread"], want)
	// A root exec gets permitted = inheritable | bounding, which is the
	// bounding set here: nothing from the runtime survives.
	checkFields(t, "after exec", sec["exec"], want)
}
