//go:build cgo

package seccomp

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Compile never touches the calling thread, so these run in the test
// process itself.

func TestCompileErrors(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno}
	for _, tc := range []struct {
		name string
		s    specs.LinuxSeccomp
		want string // substrings of the error
	}{
		{"unknown default action", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, `defaultAction: unknown action "SCMP_ACT_FOO"`},
		{"empty default action", specs.LinuxSeccomp{}, `unknown action ""`},
		{"unknown rule action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{ok, {Names: []string{"getpid"}, Action: "SCMP_ACT_BOGUS"}}}, `syscalls[1]: unknown action "SCMP_ACT_BOGUS"`},
		{"unknown operator", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_APPROX"}}}}}, `unknown operator "SCMP_CMP_APPROX"`},
		{"unknown arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_Z80"}}, `unknown architecture "SCMP_ARCH_Z80"`},
		{"unknown flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `unknown seccomp flag "SECCOMP_FILTER_FLAG_FAST"`},
		{"argument index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "argument index 6"},
		{"empty name", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", ""}, Action: specs.ActErrno}}}, "empty syscall name"},
		{"errnoRet on allow", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow, ErrnoRet: uptr(1)}}}, "SCMP_ACT_ALLOW takes no errnoRet"},
		{"defaultErrnoRet on kill", specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, DefaultErrnoRet: uptr(1)}, "SCMP_ACT_KILL_PROCESS takes no errnoRet"},
		{"errno too large", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(4096)}, "errnoRet 4096"},
		{"trace data too large", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActTrace, ErrnoRet: uptr(1 << 16)}}}, "16 bits"},
		{"notify default", specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/l"}, "SCMP_ACT_NOTIFY cannot be the default action"},
		{"notify sendmsg", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/l", Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat", "sendmsg"}, Action: specs.ActNotify}}}, "sendmsg"},
		{"notify without listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}}, "listenerPath"},
		{"arch of the other byte order", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390X}}, "add SCMP_ARCH_S390X next to the native architecture"},
		{"arch libseccomp lacks", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchSHEB}}, "SCMP_ARCH_SHEB is not supported by libseccomp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "arch of the other byte order" && runtime.GOARCH != "amd64" {
				t.Skip("chosen for an amd64 host")
			}
			if tc.name == "arch libseccomp lacks" && slices.Contains(Features().Archs, string(specs.ArchSHEB)) {
				t.Skipf("libseccomp %s knows SCMP_ARCH_SHEB", Version())
			}
			_, err := Compile(&tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
}

func mustCompile(t *testing.T, s specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := Compile(&s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A name libseccomp does not know is skipped, and a rule equal to the
// default is dropped; neither changes the program.
func TestSkippedRules(t *testing.T) {
	base := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActAllow}},
	})
	same := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"not_a_syscall", "getppid", "frobnicate2"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EPERM))},
			{Names: []string{"all_unknown"}, Action: specs.ActKillProcess},
		},
	})
	if !reflect.DeepEqual(base.prog, same.prog) {
		t.Errorf("programs differ: %d and %d instructions", len(base.prog), len(same.prog))
	}
	// Same action, other errno: not the default, so it is a rule.
	other := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(38)},
		},
	})
	if len(other.prog) <= len(base.prog) {
		t.Errorf("rule with another errno was dropped: %d instructions", len(other.prog))
	}
	// A syscall of another architecture only (chown32 is i386's) is
	// accepted for a native-only amd64 filter.
	mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"chown32", "chown"}, Action: specs.ActErrno}},
	})
}

func TestArchitectures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the architectures below are chosen for an amd64 host")
	}
	native := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	})
	multi := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	})
	if len(multi.prog) <= len(native.prog) {
		t.Errorf("extra architectures did not grow the program: %d vs %d instructions", len(multi.prog), len(native.prog))
	}
	// The native architecture is always in: a list without it still
	// checks native syscalls.
	foreign := mustCompile(t, specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchAARCH64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno}},
	})
	auditArches := map[uint32]bool{}
	for _, ins := range foreign.prog {
		if ins.Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K {
			auditArches[ins.K] = true
		}
	}
	if !auditArches[unix.AUDIT_ARCH_X86_64] || !auditArches[unix.AUDIT_ARCH_AARCH64] {
		t.Errorf("program does not check both x86_64 and aarch64 (%d instructions)", len(foreign.prog))
	}
}

func TestFlags(t *testing.T) {
	notifyRule := []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}
	for _, tc := range []struct {
		name  string
		flags []specs.LinuxSeccompFlag
		rules []specs.LinuxSyscall
		want  uintptr
	}{
		{"none", nil, nil, 0},
		{"log", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, nil, unix.SECCOMP_FILTER_FLAG_LOG},
		{"spec allow", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, nil, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{"tsync is dropped", []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, nil, 0},
		{"wait killable without listener", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, nil, 0},
		{"notify", nil, notifyRule, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
		{"notify wait killable", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv, "SECCOMP_FILTER_FLAG_TSYNC"}, notifyRule,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range tc.flags {
				if name := string(f); !slices.Contains(Features().SupportedFlags, name) {
					t.Skipf("this kernel lacks %s", name)
				}
			}
			f := mustCompile(t, specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/l", Flags: tc.flags, Syscalls: tc.rules})
			if f.flags != tc.want || f.notify != (tc.rules != nil) {
				t.Errorf("flags = %#x, notify %v; want %#x", f.flags, f.notify, tc.want)
			}
		})
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Error("not enabled")
	}
	want := []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}
	if !slices.Equal(f.Actions, want) {
		t.Errorf("actions = %v", f.Actions)
	}
	if len(f.Operators) != 7 || !slices.Contains(f.Operators, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("operators = %v", f.Operators)
	}
	// Both byte orders: libseccomp 2.5 knows all of these.
	for _, a := range []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X", "SCMP_ARCH_PPC64", "SCMP_ARCH_MIPS"} {
		if !slices.Contains(f.Archs, a) {
			t.Errorf("archs %v lack %s", f.Archs, a)
		}
	}
	if len(f.KnownFlags) != 4 {
		t.Errorf("known flags = %v", f.KnownFlags)
	}
	for _, s := range f.SupportedFlags {
		if !slices.Contains(f.KnownFlags, s) {
			t.Errorf("supported flag %s is not known", s)
		}
	}
	// SECCOMP_FILTER_FLAG_LOG is from Linux 4.14.
	if !slices.Contains(f.SupportedFlags, "SECCOMP_FILTER_FLAG_LOG") {
		t.Errorf("supported flags = %v", f.SupportedFlags)
	}
	var major, minor, micro int
	if n, _ := fmt.Sscanf(Version(), "%d.%d.%d", &major, &minor, &micro); n != 3 || major != 2 {
		t.Errorf("Version() = %q", Version())
	}
}

func TestDecodeBPF(t *testing.T) {
	if _, err := decodeBPF(make([]byte, 12)); err == nil {
		t.Error("12 bytes decoded")
	}
	if _, err := decodeBPF(make([]byte, 8*(unix.BPF_MAXINSNS+1))); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized program: %v", err)
	}
}

// dockerCaps is Docker's default capability set (see SECURITY.md).
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func dockerProfile(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: dockerCaps}}}
	s, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDockerDefaultProfile(t *testing.T) {
	needBusybox(t)
	s := dockerProfile(t)
	f := mustCompile(t, *s)
	t.Logf("Docker's default profile: %d rules, %d BPF instructions", len(s.Syscalls), len(f.prog))

	dir := t.TempDir()
	r := runPlan(t, plan{
		Spec: *s,
		Calls: []call{
			raw(unix.SYS_UNSHARE, unix.CLONE_NEWUSER),
			raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uint64(0xfffffffd) /* KEY_SPEC_SESSION_KEYRING */),
			raw(unix.SYS_SOCKET, unix.AF_ALG, unix.SOCK_SEQPACKET),
			raw(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM),
			raw(unix.SYS_CLONE3),
			raw(unix.SYS_GETPID),
			raw(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM),
			mkdir(dir + "/ok"),
			{Op: "exec", Argv: []string{busybox, "sh", "-c", "echo hello from busybox; grep Seccomp: /proc/self/status"}},
		},
	})
	r.mustExit(t)
	eperm := int(unix.EPERM)
	// clone3 fails with ENOSYS so that glibc falls back to clone.
	r.wantErrnos(t, eperm, eperm, eperm, eperm, int(unix.ENOSYS), 0, 0, 0, -1)
	if !strings.Contains(r.stdout, "hello from busybox\nSeccomp:\t2\n") {
		t.Errorf("busybox under the profile:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}
