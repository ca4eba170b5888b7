//go:build cgo

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// childEnv carries a plan (JSON) to a re-executed test binary, which then
// runs it instead of the tests. Loading a filter is irreversible, so only
// such children ever call load; the child does it from its main thread,
// locked for its whole life, so the filter and the calls after it are on
// the same thread.
const childEnv = "BERTH_SECCOMP_TEST_PLAN"

func init() {
	if os.Getenv(childEnv) != "" {
		// In an init function the main goroutine is still on the main
		// thread: lock it there for the child's whole life.
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if plan := os.Getenv(childEnv); plan != "" {
		if err := runChild(plan); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// plan is what a child does: compile Spec, optionally connect to its
// listenerPath, set no_new_privs, load the encoded program (what the
// runtime puts into the stage's plan), send the listener, then make Calls
// in order, printing one "call <i> <errno>" line each (0 for success).
type plan struct {
	Spec   specs.LinuxSeccomp
	Notify bool // dial Spec.ListenerPath and sendNotify after load
	Calls  []call
}

// call is one step after load.
type call struct {
	// Op is "raw" (Nr with Args), "mkdir" (mkdirat(AT_FDCWD, Path)),
	// "threads" (print the Seccomp mode of this and the other threads)
	// or "exec" (execve Argv; never returns on success).
	Op   string
	Nr   uintptr
	Args [6]uint64
	Path string
	Argv []string
}

func raw(nr uintptr, args ...uint64) call {
	c := call{Op: "raw", Nr: nr}
	copy(c.Args[:], args)
	return c
}

func mkdir(path string) call { return call{Op: "mkdir", Path: path} }

func runChild(planJSON string) error {
	var p plan
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
		return err
	}
	// SIGSYS dumps core by default; keep cores of killed children out
	// of the working directory.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	f, err := Compile(&p.Spec)
	if err != nil {
		return err
	}
	var state []byte
	var conn *os.File
	if p.Notify {
		if state, err = ProcessState(specs.State{Version: specs.Version, ID: "ctr", Status: specs.StateCreating, Bundle: "/bundle"}, os.Getpid(), p.Spec.ListenerMetadata); err != nil {
			return err
		}
		if conn, err = DialListener(p.Spec.ListenerPath); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	fd, err := load(f.Encode())
	if err != nil {
		return err
	}
	fmt.Printf("listener %v\n", fd >= 0)
	if conn != nil {
		if err := sendNotify(conn, fd, state); err != nil {
			return err
		}
		unix.Close(fd)
		conn.Close()
	}
	for i, c := range p.Calls {
		var errno syscall.Errno
		switch c.Op {
		case "raw":
			a := c.Args
			_, _, errno = unix.Syscall6(c.Nr, uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
		case "mkdir":
			if err := unix.Mkdirat(unix.AT_FDCWD, c.Path, 0o755); err != nil {
				errno = err.(syscall.Errno)
			}
		case "threads":
			printThreads()
		case "exec":
			err := unix.Exec(c.Argv[0], c.Argv, os.Environ())
			errno = err.(syscall.Errno)
		default:
			return fmt.Errorf("unknown op %q", c.Op)
		}
		fmt.Printf("call %d %d\n", i, int(errno))
	}
	return nil
}

// load installs an encoded program on the calling thread the way the
// stage does (privileges.c, priv_load_seccomp): one seccomp(2) call with the
// encoded flags, no TSYNC, returning the notify listener or -1. The tests
// load what Encode produces, so they check the program and flags the
// runtime hands the stage.
func load(e *Encoded) (int, error) {
	if e == nil || len(e.Prog) == 0 || len(e.Prog) > 0xffff {
		return -1, errors.New("load seccomp filter: empty or oversized program")
	}
	prog := unix.SockFprog{Len: uint16(len(e.Prog)), Filter: &e.Prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, e.Flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(e)
	if errno != 0 {
		return -1, fmt.Errorf("load seccomp filter: %w", os.NewSyscallError("seccomp", errno))
	}
	if e.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return -1, nil
	}
	return int(r), nil
}

// sendNotify sends state and the listener fd over conn in one sendmsg,
// the descriptor as SCM_RIGHTS, as the stage does; a short write is
// finished with the rest of the state alone.
func sendNotify(conn *os.File, fd int, state []byte) error {
	oob := unix.UnixRights(fd)
	for len(state) > 0 {
		n, err := unix.SendmsgN(int(conn.Fd()), state, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send seccomp listener: %w", os.NewSyscallError("sendmsg", err))
		}
		state, oob = state[n:], nil
	}
	return nil
}

// printThreads prints "thread self <mode>" and "thread other <mode>" lines
// from /proc/self/task/*/status.
func printThreads() {
	self := strconv.Itoa(unix.Gettid())
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		who := "other"
		if filepath.Base(filepath.Dir(p)) == self {
			who = "self"
		}
		fmt.Printf("thread %s %s\n", who, statusField(string(b), "Seccomp"))
	}
}

func statusField(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// result is what a child did.
type result struct {
	stdout, stderr string
	status         syscall.WaitStatus
	errnos         []int // by call index; -1 for a call that printed nothing
}

func childCmd(t *testing.T, p plan) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func waitChild(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer, p plan) result {
	t.Helper()
	err := cmd.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), status: cmd.ProcessState.Sys().(syscall.WaitStatus)}
	r.errnos = make([]int, len(p.Calls))
	for i := range r.errnos {
		r.errnos[i] = -1
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		var i, e int
		if n, _ := fmt.Sscanf(line, "call %d %d", &i, &e); n == 2 && i < len(r.errnos) {
			r.errnos[i] = e
		}
	}
	return r
}

func runPlan(t *testing.T, p plan) result {
	t.Helper()
	cmd, stdout, stderr := childCmd(t, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return waitChild(t, cmd, stdout, stderr, p)
}

// mustExit fails the test unless the child exited with code 0.
func (r result) mustExit(t *testing.T) {
	t.Helper()
	if !r.status.Exited() || r.status.ExitStatus() != 0 {
		t.Fatalf("child ended with %v\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

func (r result) wantErrnos(t *testing.T, want ...int) {
	t.Helper()
	if fmt.Sprint(r.errnos) != fmt.Sprint(want) {
		t.Errorf("errnos = %v, want %v\nstdout:\n%s\nstderr:\n%s", r.errnos, want, r.stdout, r.stderr)
	}
}

func uptr(v uint) *uint { return &v }

// goRuntimeSyscalls are what a Go program's main thread may need besides
// the test's own calls, for profiles whose default action denies.
var goRuntimeSyscalls = []string{
	"write", "exit", "exit_group", "futex", "nanosleep", "sched_yield",
	"mmap", "munmap", "madvise", "mprotect", "brk", "rt_sigprocmask",
	"rt_sigaction", "rt_sigreturn", "sigaltstack", "clone", "clone3",
	"gettid", "getpid", "tgkill", "clock_gettime", "epoll_pwait",
	"epoll_ctl", "fcntl", "close",
}
