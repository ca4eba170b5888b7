//go:build cgo

package seccomp

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const busybox = "/bin/busybox"

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("no %s (Debian's busybox-static) to exec: %v", busybox, err)
	}
}

func TestErrnoRules(t *testing.T) {
	dir := t.TempDir()
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
				{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(38)},
				{Names: []string{"getpgrp"}, Action: specs.ActErrno, ErrnoRet: uptr(0)},
				// Equal to the default action: skipped, not refused.
				{Names: []string{"getpid"}, Action: specs.ActAllow},
			},
		},
		Calls: []call{
			mkdir(dir + "/a"),
			raw(unix.SYS_GETPPID),
			raw(unix.SYS_GETPGRP),
			raw(unix.SYS_GETPID),
		},
	})
	r.mustExit(t)
	r.wantErrnos(t, int(unix.EPERM), 38, 0, 0)
	if !strings.Contains(r.stdout, "listener false") {
		t.Errorf("load returned a listener for a filter without notify rules:\n%s", r.stdout)
	}
	if _, err := os.Stat(dir + "/a"); err == nil {
		t.Error("mkdirat returned EPERM but the directory exists")
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	dir := t.TempDir()
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction:   specs.ActErrno,
			DefaultErrnoRet: uptr(uint(unix.EOPNOTSUPP)),
			Syscalls: []specs.LinuxSyscall{
				{Names: goRuntimeSyscalls, Action: specs.ActAllow},
			},
		},
		Calls: []call{
			mkdir(dir + "/a"),
			raw(unix.SYS_GETPPID),
			raw(unix.SYS_GETPID),
		},
	})
	r.mustExit(t)
	r.wantErrnos(t, int(unix.EOPNOTSUPP), int(unix.EOPNOTSUPP), 0)
}

func TestKillProcess(t *testing.T) {
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
		},
		Calls: []call{raw(unix.SYS_GETPID), raw(unix.SYS_GETPPID), raw(unix.SYS_GETPID)},
	})
	if !r.status.Signaled() || r.status.Signal() != syscall.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	r.wantErrnos(t, 0, -1, -1)
}

// TestActionsAfterExec covers the actions whose effect shows best on a
// plain C program: KILL, KILL_THREAD and TRAP end a single-threaded
// busybox with SIGSYS (TRAP through SIGSYS's default disposition), LOG lets
// the syscall through.
func TestActionsAfterExec(t *testing.T) {
	needBusybox(t)
	for _, tc := range []struct {
		action specs.LinuxSeccompAction
		killed bool
	}{
		{specs.ActKill, true},
		{specs.ActKillThread, true},
		{specs.ActTrap, true},
		{specs.ActLog, false},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			dir := t.TempDir()
			r := runPlan(t, plan{
				Spec: specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: tc.action}},
				},
				Calls: []call{{Op: "exec", Argv: []string{busybox, "mkdir", dir + "/a"}}},
			})
			_, statErr := os.Stat(dir + "/a")
			if tc.killed {
				if !r.status.Signaled() || r.status.Signal() != syscall.SIGSYS {
					t.Fatalf("busybox ended with %v, want killed by SIGSYS\nstderr:\n%s", r.status, r.stderr)
				}
				if statErr == nil {
					t.Error("the directory exists")
				}
				return
			}
			r.mustExit(t)
			if statErr != nil {
				t.Error(statErr)
			}
		})
	}
}

func TestTraceWithoutTracer(t *testing.T) {
	// With no tracer attached the kernel fails a SECCOMP_RET_TRACE
	// syscall with ENOSYS, whatever the data.
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActTrace, ErrnoRet: uptr(7)}},
		},
		Calls: []call{raw(unix.SYS_GETPPID)},
	})
	r.mustExit(t)
	r.wantErrnos(t, int(unix.ENOSYS))
}

// TestArgConditions puts conditions on getppid, which ignores its
// arguments while seccomp still sees them, so any value can be tried.
func TestArgConditions(t *testing.T) {
	const hit = 77 // errno of the rule; 0 means the rule did not match
	arg := func(i uint, op specs.LinuxSeccompOperator, v uint64, v2 ...uint64) specs.LinuxSeccompArg {
		a := specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
		if len(v2) > 0 {
			a.ValueTwo = v2[0]
		}
		return a
	}
	for _, tc := range []struct {
		name  string
		args  []specs.LinuxSeccompArg
		calls [][]uint64 // getppid arguments
		want  []int
	}{
		{"NE", []specs.LinuxSeccompArg{arg(0, specs.OpNotEqual, 5)}, [][]uint64{{5}, {6}}, []int{0, hit}},
		{"LT", []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, 5)}, [][]uint64{{4}, {5}, {1 << 32}}, []int{hit, 0, 0}},
		{"LE", []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, 5)}, [][]uint64{{5}, {6}}, []int{hit, 0}},
		{"EQ", []specs.LinuxSeccompArg{arg(2, specs.OpEqualTo, 0xffffffff)}, [][]uint64{{0, 0, 0xffffffff}, {0, 0, 0xfffffffe}, {0xffffffff}}, []int{hit, 0, 0}},
		{"EQ64", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1<<32|5)}, [][]uint64{{1<<32 | 5}, {5}}, []int{hit, 0}},
		{"GE", []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, 5)}, [][]uint64{{5}, {4}}, []int{hit, 0}},
		{"GT", []specs.LinuxSeccompArg{arg(5, specs.OpGreaterThan, 5)}, [][]uint64{{0, 0, 0, 0, 0, 6}, {0, 0, 0, 0, 0, 5}}, []int{hit, 0}},
		// value is the mask, valueTwo the datum: (arg & 0xf0) == 0x50.
		{"MASKED_EQ", []specs.LinuxSeccompArg{arg(1, specs.OpMaskedEqual, 0xf0, 0x50)}, [][]uint64{{0, 0x5f}, {0, 0x4f}, {0, 0xf0}}, []int{hit, 0, 0}},
		// Distinct indexes: both must match.
		{"AND", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(1, specs.OpEqualTo, 2)}, [][]uint64{{1, 2}, {1, 3}, {3, 2}}, []int{hit, 0, 0}},
		// A repeated index: one rule per condition, as runc does.
		{"OR", []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, 1), arg(0, specs.OpEqualTo, 2)}, [][]uint64{{1}, {2}, {3}}, []int{hit, hit, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan{Spec: specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(hit), Args: tc.args}},
			}}
			for _, a := range tc.calls {
				p.Calls = append(p.Calls, raw(unix.SYS_GETPPID, a...))
			}
			r := runPlan(t, p)
			r.mustExit(t)
			r.wantErrnos(t, tc.want...)
		})
	}
}

func TestSocketFamilies(t *testing.T) {
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{
				{Names: goRuntimeSyscalls, Action: specs.ActAllow},
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: unix.AF_UNIX}}},
			},
		},
		Calls: []call{
			raw(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM),
			raw(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM),
		},
	})
	r.mustExit(t)
	r.wantErrnos(t, 0, int(unix.EPERM))
}

// TestSurvivesExec shows the two halves of the thread model: only the
// loading thread is filtered, and execve keeps its filter.
func TestSurvivesExec(t *testing.T) {
	needBusybox(t)
	dir := t.TempDir()
	r := runPlan(t, plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_TSYNC"},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		},
		Calls: []call{
			{Op: "threads"},
			{Op: "exec", Argv: []string{busybox, "sh", "-c", "mkdir " + dir + "/x; echo rc=$?; grep Seccomp: /proc/self/status"}},
		},
	})
	r.mustExit(t)
	if !strings.Contains(r.stdout, "thread self 2\n") || !strings.Contains(r.stdout, "thread other 0\n") {
		t.Errorf("want the loading thread in mode 2 and another thread in mode 0 (no TSYNC):\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "Operation not permitted") || !strings.Contains(r.stdout, "rc=1\n") {
		t.Errorf("busybox mkdir was not denied:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Seccomp:\t2\n") {
		t.Errorf("the exec'd program is not in seccomp filter mode:\n%s", r.stdout)
	}
	if _, err := os.Stat(dir + "/x"); err == nil {
		t.Error("the directory exists")
	}
}
