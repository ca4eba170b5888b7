package runtime_test

// linux.seccomp: errno and kill actions, SCMP_ACT_NOTIFY handed to an agent
// at listenerPath, Docker's default profile, and a profile without
// no_new_privs.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

// confineMkdirProfile allows everything but mkdir and mkdirat, which get
// action (with errnoRet ret when not nil).
func confineMkdirProfile(action specs.LinuxSeccompAction, ret *uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: action, ErrnoRet: ret},
		},
	}
}

// TestConfineSeccompErrno: mkdir fails with the profile's errno while the
// rest works, and the process runs in seccomp filter mode.
func TestConfineSeccompErrno(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	// Without a profile: no filter, mkdir works.
	plain := confineBundle(t, confineID(t))
	if rep := r.RunProbe(plain, confineID(t)); rep.Seccomp != 0 {
		t.Errorf("without linux.seccomp: seccomp mode %d, want 0", rep.Seccomp)
	}

	one, erofs := uint(1), uint(unix.EROFS)
	b := confineBundle(t, confineID(t), fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Seccomp = confineMkdirProfile(specs.ActErrno, &one)
		s.Linux.Seccomp.Syscalls = append(s.Linux.Seccomp.Syscalls,
			specs.LinuxSyscall{Names: []string{"rmdir"}, Action: specs.ActErrno, ErrnoRet: &erofs})
	}))
	res := confineRun(t, r, b, confineID(t), "/bin/sh", "-c",
		`mkdir /tmp/x; echo "mkdir=$?"; [ -d /tmp/x ] && echo exists; rmdir /tmp; echo "rmdir=$?"; echo hello > /tmp/f && cat /tmp/f`)
	if res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	for _, want := range []string{"mkdir=1", "rmdir=1", "hello"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("stdout lacks %q: %s", want, res)
		}
	}
	if strings.Contains(res.Stdout, "exists") {
		t.Errorf("mkdir made the directory under the profile: %s", res)
	}
	for _, want := range []string{"Operation not permitted", "Read-only file system"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q (errnoRet 1 for mkdir, 30 for rmdir): %s", want, res)
		}
	}
	rep := r.RunProbe(b, confineID(t))
	if rep.Seccomp != 2 {
		t.Errorf("seccomp mode %d, want 2 (filter)", rep.Seccomp)
	}
	if rep.SeccompFilters != -1 && rep.SeccompFilters < 1 {
		t.Errorf("seccomp filters %d, want at least 1", rep.SeccompFilters)
	}
	if !rep.NoNewPrivs {
		t.Errorf("no_new_privs off although the spec asks for it")
	}
}

// TestConfineSeccompKillProcess: a syscall with SCMP_ACT_KILL_PROCESS kills
// the process with SIGSYS, and run exits with 128+31.
func TestConfineSeccompKillProcess(t *testing.T) {
	t.Parallel()
	for _, action := range []specs.LinuxSeccompAction{specs.ActKillProcess, specs.ActKillThread} {
		t.Run(string(action), func(t *testing.T) {
			t.Parallel()
			r := runtimetest.New(t)
			id := confineID(t)
			b := confineBundle(t, id, fixture.WithSpec(func(s *specs.Spec) {
				s.Linux.Seccomp = confineMkdirProfile(action, nil)
			}))
			res := confineRun(t, r, b, id, "/bin/mkdir", "/tmp/x")
			if res.Code != 128+int(unix.SIGSYS) {
				t.Errorf("run mkdir under %s: %s; want exit %d (SIGSYS)", action, res, 128+int(unix.SIGSYS))
			}
			confineNoLeftovers(t, r, id)
			// The rest of the program's syscalls are allowed.
			res = confineRun(t, r, b, confineID(t), "/bin/sh", "-c", "echo ok")
			if res.Code != 0 || strings.TrimSpace(res.Stdout) != "ok" {
				t.Errorf("echo under %s: %s", action, res)
			}
		})
	}
}

// confineNotifyMsg is what the test's agent received on listenerPath.
type confineNotifyMsg struct {
	state specs.ContainerProcessState
	raw   string
	fd    int
	err   error
}

// confineListen accepts one connection on a unix socket at path and reads
// the runtime's message: the ContainerProcessState JSON and one descriptor.
func confineListen(t testing.TB, path string) <-chan confineNotifyMsg {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan confineNotifyMsg, 1)
	go func() {
		defer l.Close()
		msg := confineNotifyMsg{fd: -1}
		defer func() { ch <- msg }()
		l.SetDeadline(time.Now().Add(60 * time.Second))
		conn, err := l.AcceptUnix()
		if err != nil {
			msg.err = fmt.Errorf("accept: %w", err)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		var data []byte
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			data = append(data, buf[:n]...)
			if oobn > 0 {
				cmsgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
				if perr != nil {
					msg.err = perr
					return
				}
				for _, c := range cmsgs {
					fds, perr := unix.ParseUnixRights(&c)
					if perr != nil {
						msg.err = perr
						return
					}
					for _, fd := range fds {
						if msg.fd < 0 {
							msg.fd = fd
						} else {
							unix.Close(fd)
							msg.err = errors.New("more than one descriptor")
						}
					}
				}
			}
			if err != nil || n == 0 {
				break
			}
		}
		msg.raw = string(data)
		if err := json.Unmarshal(data, &msg.state); err != nil {
			msg.err = fmt.Errorf("decode the container process state: %v: %q", err, data)
		}
	}()
	return ch
}

// confineNotifPath reads the NUL-terminated path at addr in pid's memory.
func confineNotifPath(pid uint32, addr uint64) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, err := f.ReadAt(buf, int64(addr))
	if n == 0 {
		return "", err
	}
	s, _, _ := strings.Cut(string(buf[:n]), "\x00")
	return s, nil
}

// confineAgent answers notifications on fd until the filter has no process
// left (the listener polls with POLLHUP then): mkdir of /fake pretends
// success, of /denied fails with EROFS, anything else runs as asked. It
// reports what it saw. It polls before each receive because the receive
// itself does not return when the filter's last process goes on every
// kernel (6.1 blocks in it for ever).
func confineAgent(fd int, seen chan<- string) {
	defer close(seen)
	defer unix.Close(fd)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			return // POLLHUP: no process uses the filter any more
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		name, _ := req.Data.Syscall.GetName()
		addr := req.Data.Args[0]
		if name == "mkdirat" {
			addr = req.Data.Args[1]
		}
		path, perr := confineNotifPath(req.Pid, addr)
		resp := &libseccomp.ScmpNotifResp{ID: req.ID}
		switch {
		case perr != nil:
			resp.Error = int32(unix.EIO)
		case path == "/fake":
			resp.Val = 0
		case path == "/denied":
			resp.Error = int32(unix.EROFS)
		default:
			resp.Flags = libseccomp.NotifRespFlagContinue
		}
		// The path was read from the process's memory: only answer if the
		// request is still the same one.
		if libseccomp.NotifIDValid(libseccomp.ScmpFd(fd), req.ID) != nil {
			continue
		}
		select {
		case seen <- fmt.Sprintf("%s %s", name, path):
		default:
		}
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), resp); err != nil {
			return
		}
	}
}

// TestConfineSeccompNotify: the runtime hands the listener and the
// container process state to the agent at listenerPath; the agent's
// answers are what the container sees.
func TestConfineSeccompNotify(t *testing.T) {
	t.Parallel()
	if api, err := libseccomp.GetAPI(); err != nil || api < 6 {
		t.Skipf("libseccomp API level %d (%v): no notify flag support", api, err)
	}
	r := runtimetest.New(t)
	id := confineID(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	msgs := confineListen(t, sock)
	b := confineBundle(t, id, fixture.WithArgs("/bin/sh", "-c", `
mkdir /fake && echo "fake: ok" || echo "fake: failed"
[ -d /fake ] && echo "fake-exists: yes" || echo "fake-exists: no"
mkdir /denied || echo "denied: failed"
mkdir /real && [ -d /real ] && echo "real: yes"
`), fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Seccomp = confineMkdirProfile(specs.ActNotify, nil)
		s.Linux.Seccomp.ListenerPath = sock
		s.Linux.Seccomp.ListenerMetadata = "confine-metadata"
		s.Annotations = map[string]string{"confine": "notify"}
	}))
	c := confineCreate(t, r, b, id)
	confineMust(t, r, "start", id)

	var msg confineNotifyMsg
	select {
	case msg = <-msgs:
	case <-time.After(60 * time.Second):
		t.Fatal("no message on the listener socket in 60s")
	}
	if msg.err != nil {
		t.Fatalf("listener: %v (received %q)", msg.err, msg.raw)
	}
	seen := make(chan string, 16)
	if msg.fd >= 0 {
		go confineAgent(msg.fd, seen)
	} else {
		close(seen)
		t.Errorf("no descriptor came with the state: %s", msg.raw)
	}
	st := msg.state
	if st.Version == "" {
		t.Errorf("ociVersion missing: %s", msg.raw)
	}
	if len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName {
		t.Errorf("fds %q, want [%q]: %s", st.Fds, specs.SeccompFdName, msg.raw)
	}
	if st.Pid != c.pid {
		t.Errorf("pid %d, want the init's host pid %d: %s", st.Pid, c.pid, msg.raw)
	}
	if st.Metadata != "confine-metadata" {
		t.Errorf("metadata %q, want the listenerMetadata: %s", st.Metadata, msg.raw)
	}
	if st.State.ID != id || st.State.Pid != c.pid || st.State.Bundle != b.Dir {
		t.Errorf("state id %q pid %d bundle %q, want %q %d %q: %s", st.State.ID, st.State.Pid, st.State.Bundle, id, c.pid, b.Dir, msg.raw)
	}
	if st.State.Annotations["confine"] != "notify" {
		t.Errorf("state annotations %v, want the spec's: %s", st.State.Annotations, msg.raw)
	}

	r.WaitStatus(id, "stopped", 30*time.Second)
	stdout, stderr := c.output(t)
	for _, want := range []string{"fake: ok", "fake-exists: no", "denied: failed", "real: yes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("container stdout lacks %q: %q (stderr %q)", want, stdout, stderr)
		}
	}
	if !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("mkdir /denied: stderr %q, want the agent's EROFS", stderr)
	}
	var calls []string
	for s := range seen {
		calls = append(calls, s)
	}
	if len(calls) < 3 {
		t.Errorf("the agent saw %q, want the three mkdir calls", calls)
	}
}

// TestConfineSeccompNotifyNeedsListener: NOTIFY without listenerPath, or
// with nobody listening, fails create with nothing left behind.
func TestConfineSeccompNotifyNeedsListener(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	for name, path := range map[string]string{"no listenerPath": "", "nobody listening": filepath.Join(t.TempDir(), "none.sock")} {
		id := confineID(t)
		b := confineBundle(t, id, fixture.WithSpec(func(s *specs.Spec) {
			s.Linux.Seccomp = confineMkdirProfile(specs.ActNotify, nil)
			s.Linux.Seccomp.ListenerPath = path
		}))
		_, res := confineTryCreate(t, r, b, id)
		confineFails(t, "create with "+name, res, "listener")
		confineNoLeftovers(t, r, id)
	}
}

// confineSysHelper builds a tiny static program for what neither busybox
// nor the probe can do: keyctl(2) and socket(2) with a given family. It
// prints "ok" or "errno=N" (exit 1).
func confineSysHelper(t testing.TB) string {
	t.Helper()
	const src = `package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	var err error
	switch os.Args[1] {
	case "keyctl":
		// KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3).
		minus3 := int32(-3)
		_, _, e := syscall.RawSyscall(syscall.SYS_KEYCTL, 0, uintptr(uint32(minus3)), 0)
		if e != 0 {
			err = e
		}
	case "socket":
		family, _ := strconv.Atoi(os.Args[2])
		typ := syscall.SOCK_STREAM
		if len(os.Args) > 3 {
			typ, _ = strconv.Atoi(os.Args[3])
		}
		var fd int
		fd, err = syscall.Socket(family, typ, 0)
		if err == nil {
			syscall.Close(fd)
		}
	}
	if e, ok := err.(syscall.Errno); ok {
		fmt.Printf("errno=%d\n", int(e))
		os.Exit(1)
	}
	fmt.Println("ok")
}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module confinesys\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "confine-sys")
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build its syscall helper (absent in the test VM)")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the syscall helper: %v\n%s", err, out)
	}
	return bin
}

// confineInstall copies the file src to /bin/<name> in the bundle's rootfs.
func confineInstall(t testing.TB, b *fixture.OCIBundle, src, name string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Rootfs, "bin", name), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestConfineSeccompDockerDefault: Docker's default profile (from
// github.com/moby/profiles/seccomp, for the spec's capabilities) refuses
// new user namespaces, keyctl, AF_ALG and AF_VSOCK sockets with EPERM, and
// ordinary programs run. Each refusal is compared with the same call
// without the profile, so that a kernel lacking the feature cannot pass
// for the profile.
func TestConfineSeccompDockerDefault(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	helper := confineSysHelper(t)
	script := `
echo "ok"; ls / | tr '\n' ' '; echo
/usr/bin/unshare -U /bin/true 2>/dev/null && echo "userns=ok" || echo "userns=EPERM-or-other"
echo "keyctl=$(/bin/confine-sys keyctl)"
echo "af_alg=$(/bin/confine-sys socket 38 5)"
echo "af_vsock=$(/bin/confine-sys socket 40 1)"
echo "af_unix=$(/bin/confine-sys socket 1 1)"
echo "af_inet=$(/bin/confine-sys socket 2 1)"
`
	results := func(profile bool) map[string]string {
		t.Helper()
		id := confineID(t)
		b := confineBundle(t, id)
		if profile {
			p, err := mobyseccomp.GetDefaultProfile(b.Spec)
			if err != nil {
				t.Fatalf("moby default profile: %v", err)
			}
			if p == nil || p.DefaultAction != specs.ActErrno || len(p.Syscalls) == 0 {
				t.Fatalf("moby default profile: unexpected %+v", p)
			}
			b.Spec.Linux.Seccomp = p
		}
		confineInstall(t, b, helper, "confine-sys")
		res := confineRun(t, r, b, id, "/bin/sh", "-c", script)
		if res.Code != 0 {
			t.Fatalf("run (profile %v): %s", profile, res)
		}
		out := map[string]string{}
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if len(lines) < 2 || lines[0] != "ok" || !strings.Contains(lines[1], "bin") || !strings.Contains(lines[1], "proc") {
			t.Errorf("echo ok; ls / (profile %v): %q", profile, res.Stdout)
		}
		for _, l := range lines {
			if k, v, ok := strings.Cut(l, "="); ok {
				out[k] = v
			}
		}
		if profile {
			rep := r.RunProbe(b, confineID(t))
			if rep.Seccomp != 2 {
				t.Errorf("seccomp mode %d under Docker's profile, want 2", rep.Seccomp)
			}
		}
		return out
	}
	without, with := results(false), results(true)
	t.Logf("without a profile: %v; under Docker's: %v", without, with)
	eperm := fmt.Sprintf("errno=%d", int(unix.EPERM))
	for _, k := range []string{"keyctl", "af_alg", "af_vsock"} {
		if with[k] != eperm {
			t.Errorf("%s under Docker's profile: %q, want %s (without the profile: %q)", k, with[k], eperm, without[k])
		}
	}
	if without["keyctl"] != "ok" {
		t.Errorf("keyctl without a profile: %q, want ok (the check above means nothing otherwise)", without["keyctl"])
	}
	for _, k := range []string{"af_alg", "af_vsock"} {
		if without[k] == eperm {
			t.Errorf("%s without a profile: %q already; the kernel, not the profile, refuses it", k, without[k])
		}
	}
	if with["userns"] == "ok" {
		t.Errorf("unshare -U succeeded under Docker's profile")
	}
	if without["userns"] != "ok" {
		t.Logf("unshare -U fails even without a profile on this host; the refusal under the profile proves little")
	}
	for _, k := range []string{"af_unix", "af_inet"} {
		if with[k] != "ok" {
			t.Errorf("%s socket under Docker's profile: %q, want ok", k, with[k])
		}
	}
}

// TestConfineSeccompWithoutNoNewPrivs: with noNewPrivileges false the
// filter is loaded while the init still has CAP_SYS_ADMIN (before the
// capabilities and the user change), so it works for a non-root process
// too; the process has no no_new_privs.
func TestConfineSeccompWithoutNoNewPrivs(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	for _, tc := range []struct {
		name   string
		uid    uint32
		docker bool
	}{{"errno-root", 0, false}, {"errno-user", 1000, false}, {"docker-user", 1000, true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := confineBundle(t, confineID(t), fixture.WithSpec(func(s *specs.Spec) {
				s.Process.NoNewPrivileges = false
				s.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
				one := uint(1)
				s.Linux.Seccomp = confineMkdirProfile(specs.ActErrno, &one)
			}))
			if tc.docker {
				p, err := mobyseccomp.GetDefaultProfile(b.Spec)
				if err != nil {
					t.Fatalf("moby default profile: %v", err)
				}
				b.Spec.Linux.Seccomp = p
			}
			rep := r.RunProbe(b, confineID(t))
			if rep.Seccomp != 2 || rep.NoNewPrivs || rep.UID != int(tc.uid) {
				t.Errorf("seccomp %d no_new_privs %v uid %d, want 2, false, %d", rep.Seccomp, rep.NoNewPrivs, rep.UID, tc.uid)
			}
			if tc.docker {
				res := confineRun(t, r, b, confineID(t), "/bin/sh", "-c", "echo ok; ls / >/dev/null && echo listed")
				if res.Code != 0 || !strings.Contains(res.Stdout, "ok") || !strings.Contains(res.Stdout, "listed") {
					t.Errorf("sh under Docker's profile without no_new_privs: %s", res)
				}
				return
			}
			res := confineRun(t, r, b, confineID(t), "/bin/sh", "-c", `mkdir /tmp/x; echo "mkdir=$?"; echo hi > /tmp/y && cat /tmp/y`)
			if res.Code != 0 || !strings.Contains(res.Stdout, "mkdir=1") || !strings.Contains(res.Stdout, "hi") ||
				!strings.Contains(res.Stderr, "Operation not permitted") {
				t.Errorf("mkdir under the profile without no_new_privs: %s", res)
			}
		})
	}
}

// TestConfineSeccompUnknownSyscall: a syscall name libseccomp does not know
// is skipped (profiles name syscalls newer than the library), and the
// rest of the profile applies.
func TestConfineSeccompUnknownSyscall(t *testing.T) {
	t.Parallel()
	r := runtimetest.New(t)
	id := confineID(t)
	one := uint(1)
	b := confineBundle(t, id, fixture.WithSpec(func(s *specs.Spec) {
		s.Linux.Seccomp = confineMkdirProfile(specs.ActErrno, &one)
		s.Linux.Seccomp.Syscalls[0].Names = append(s.Linux.Seccomp.Syscalls[0].Names, "confine_no_such_syscall")
		s.Linux.Seccomp.Syscalls = append(s.Linux.Seccomp.Syscalls,
			specs.LinuxSyscall{Names: []string{"confine_another_unknown"}, Action: specs.ActKillProcess})
	}))
	res := confineRun(t, r, b, id, "/bin/sh", "-c", `mkdir /tmp/x; echo "mkdir=$?"`)
	if res.Code != 0 {
		t.Fatalf("a profile naming unknown syscalls was refused: %s", res)
	}
	if !strings.Contains(res.Stdout, "mkdir=1") {
		t.Errorf("mkdir not denied next to an unknown syscall name: %s", res)
	}
}
