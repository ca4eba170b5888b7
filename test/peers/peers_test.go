package peers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/test/probe/report"
	"github.com/berth-project/berth/test/runtimetest"
)

// requirePeersEnv turns a missing client into a failure instead of a skip.
const requirePeersEnv = "BERTH_TEST_REQUIRE_PEERS"

// requireTools skips (or, with BERTH_TEST_REQUIRE_PEERS, fails) the test
// unless every named program is on PATH, and returns their paths in order.
func requireTools(t *testing.T, names ...string) []string {
	t.Helper()
	runtimetest.RequireRoot(t)
	paths := make([]string, len(names))
	var missing []string
	for i, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		paths[i] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("peer client not installed: %s (hack/deps.sh installs it)", strings.Join(missing, ", "))
		if v := os.Getenv(requirePeersEnv); v != "" && v != "0" {
			t.Fatalf("%s; %s is set", msg, requirePeersEnv)
		}
		t.Skipf("%s; set %s=1 to fail instead", msg, requirePeersEnv)
	}
	return paths
}

// result is how a client command ended.
type result struct {
	args   []string
	stdout string
	stderr string
	// code is the exit status, or -1 when the command did not exit
	// normally (see err).
	code int
	err  error
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d (%v)\nstdout: %s\nstderr: %s",
		strings.Join(r.args, " "), r.code, r.err, clip(r.stdout), clip(r.stderr))
}

// clip shortens long output for failure messages.
func clip(s string) string {
	const max = 4000
	if len(s) > max {
		return s[:max] + fmt.Sprintf("... [%d bytes more]", len(s)-max)
	}
	return s
}

// run runs cmd with its output captured, killing it after timeout.
func run(cmd *exec.Cmd, timeout time.Duration) result {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := runtimetest.RunTimeout(cmd, timeout)
	r := result{args: cmd.Args, stdout: o.String(), stderr: e.String(), code: -1, err: err}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	}
	return r
}

// runOnPty runs cmd with a new terminal of rows x cols as its standard
// input, output and error and as the controlling terminal of a new
// session, as a user's shell would; it returns what cmd wrote to the
// terminal.
func runOnPty(t *testing.T, cmd *exec.Cmd, timeout time.Duration, rows, cols uint16) result {
	t.Helper()
	master, slave, err := console.OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	defer slave.Close()
	// A non-blocking master is pollable, so reads can have a deadline: a
	// stray process holding the slave must not hang the test.
	mfd, err := unix.Dup(int(master.Fd()))
	master.Close()
	if err != nil {
		t.Fatalf("dup pty master: %v", err)
	}
	unix.CloseOnExec(mfd)
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(mfd)
		t.Fatalf("pty master non-blocking: %v", err)
	}
	m := os.NewFile(uintptr(mfd), "ptmx")
	defer m.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}

	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				// EIO once every slave descriptor is closed; a deadline.
				return
			}
		}
	}()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	slave.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		werr = fmt.Errorf("killed after %s: %v", timeout, <-done)
	}
	m.SetReadDeadline(time.Now().Add(3 * time.Second))
	<-read
	r := result{args: cmd.Args, stdout: out.String(), code: -1, err: werr}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		r.code = 0
	case errors.As(werr, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	}
	return r
}

// jsonIn decodes the first JSON object in out (terminal output carries
// carriage returns and whatever the client echoed around it) into v.
func jsonIn(t *testing.T, out string, v any) {
	t.Helper()
	start, end := strings.Index(out, "{"), strings.LastIndex(out, "}")
	if start < 0 || end < start {
		t.Fatalf("no JSON object in output: %q", clip(out))
	}
	if err := json.Unmarshal([]byte(out[start:end+1]), v); err != nil {
		t.Fatalf("parse probe output: %v\n%q", err, clip(out))
	}
}

// parseReport decodes a probe report.
func parseReport(t *testing.T, out string) *report.Report {
	t.Helper()
	var rep report.Report
	jsonIn(t, out, &rep)
	if len(rep.Errors) > 0 {
		t.Logf("probe could not read: %s", strings.Join(rep.Errors, "; "))
	}
	return &rep
}

// isolatedKinds are the namespaces both clients give every container by
// default on this host (the cgroup namespace stays the host's on cgroup v1).
var isolatedKinds = []string{"pid", "mnt", "uts", "ipc", "net"}

// nsInodes returns the inode of each namespace kind of the process whose
// /proc directory is proc ("/proc/self", "/proc/1234").
func nsInodes(t *testing.T, proc string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, kind := range isolatedKinds {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(proc, "ns", kind), &st); err != nil {
			t.Fatalf("stat %s namespace: %v", kind, err)
		}
		m[kind] = st.Ino
	}
	return m
}

// checkInit checks the report of a container's first process: pid 1,
// the hostname (when want is not empty) and namespaces of its own.
func checkInit(t *testing.T, rep *report.Report, hostname string) {
	t.Helper()
	if rep.PID != 1 {
		t.Errorf("pid %d, want 1 in a new pid namespace", rep.PID)
	}
	if hostname != "" && rep.Hostname != hostname {
		t.Errorf("hostname %q, want %q", rep.Hostname, hostname)
	}
	host := nsInodes(t, "/proc/self")
	for _, kind := range isolatedKinds {
		switch got := rep.Namespaces[kind]; got {
		case 0:
			t.Errorf("%s namespace not reported", kind)
		case host[kind]:
			t.Errorf("%s namespace is the host's (%d)", kind, got)
		}
	}
}

// checkJoined checks that an exec'd process shares the namespaces of the
// container's init (pid on the host) and is not its pid 1.
func checkJoined(t *testing.T, rep *report.Report, initPid int) {
	t.Helper()
	if rep.PID == 1 || rep.PID == 0 {
		t.Errorf("exec'd process has pid %d in the container, want another than 1", rep.PID)
	}
	want := nsInodes(t, "/proc/"+strconv.Itoa(initPid))
	for _, kind := range isolatedKinds {
		if got := rep.Namespaces[kind]; got != want[kind] {
			t.Errorf("exec'd process %s namespace %d, want the container's %d", kind, got, want[kind])
		}
	}
}

// checkTerminal checks what "probe tty" printed on a terminal of rows x
// cols. The size is only logged: both clients resize the container's
// terminal after starting the process, which may look first.
func checkTerminal(t *testing.T, r result, rows, cols uint16) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	var term report.Terminal
	jsonIn(t, r.stdout, &term)
	if term.IsTTY != [3]bool{true, true, true} {
		t.Errorf("isatty(0, 1, 2) = %v, want all true\n%s", term.IsTTY, r)
	}
	if term.Rows != rows || term.Cols != cols {
		t.Logf("container terminal %dx%d, client's %dx%d (resized after start)", term.Rows, term.Cols, rows, cols)
	}
}

// stateLeft fails the test if the runtime still has state for id under
// root.
func stateLeft(t *testing.T, root, id string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, id)); err == nil {
		entries, _ := os.ReadDir(filepath.Join(root, id))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("runtime state left behind: %s (%s)", filepath.Join(root, id), strings.Join(names, " "))
	}
}

// cgroupDirs lists the directories of cgroup path rel (e.g. "ns/id") in
// every mounted hierarchy.
func cgroupDirs(rel string) []string {
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + rel, "/sys/fs/cgroup/" + rel} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				dirs = append(dirs, m)
			}
		}
	}
	return dirs
}

// removeCgroupDirs removes the (empty) cgroups at rel, deepest first, and
// reports what could not be removed.
func removeCgroupDirs(t *testing.T, rel string) {
	t.Helper()
	dirs := cgroupDirs(rel)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			t.Logf("clean-up: rmdir %s: %v", d, err)
		}
	}
}

// mountsUnder returns the mount points under dir in the mount table
// mountinfo (a /proc/<pid>/mountinfo path), deepest first.
func mountsUnder(mountinfo, dir string) []string {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount decodes the octal escapes (\040) of a mountinfo path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount under dir in this mount namespace.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	for _, mp := range mountsUnder("/proc/self/mountinfo", dir) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			t.Logf("clean-up: unmount %s: %v", mp, err)
		} else {
			t.Logf("clean-up: unmounted %s", mp)
		}
	}
}

// killMatching kills (SIGKILL) the processes named name whose command
// line contains marker, and returns their pids. Only processes the test
// started carry its marker (its socket or storage path).
func killMatching(t *testing.T, name, marker string) []int {
	t.Helper()
	var killed []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(args[0]) != name || !strings.Contains(string(cmdline), marker) {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// debugEnabled tells whether BERTH_TEST_PEERS_DEBUG asks for client debug
// logs.
func debugEnabled() bool {
	v := os.Getenv("BERTH_TEST_PEERS_DEBUG")
	return v != "" && v != "0"
}

// waitFor polls cond every 50 ms until it is true or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
