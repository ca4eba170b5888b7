//go:build cgo

package seccomp

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// TestNotify plays the agent: the child connects to listenerPath, loads a
// filter with SCMP_ACT_NOTIFY on mkdirat and sends the listener; the test
// reads the state and the descriptor, then answers three mkdirat calls with
// a fake success, an errno, and "continue" (the kernel runs the syscall).
func TestNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	p := plan{
		Spec: specs.LinuxSeccomp{
			DefaultAction:    specs.ActAllow,
			ListenerPath:     sock,
			ListenerMetadata: "meta=1",
			Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
			Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		},
		Notify: true,
		Calls:  []call{mkdir(dir + "/faked"), mkdir(dir + "/denied"), mkdir(dir + "/real")},
	}
	cmd, stdout, stderr := childCmd(t, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	l.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("accept: %v\nstderr:\n%s", err, stderr)
	}
	defer conn.Close()
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cmsgs) != 1 {
		t.Fatalf("control messages %v, %v", cmsgs, err)
	}
	fds, err := unix.ParseUnixRights(&cmsgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("descriptors %v, %v", fds, err)
	}
	listener := fds[0]
	defer unix.Close(listener)

	var st specs.ContainerProcessState
	if err := json.Unmarshal(buf[:n], &st); err != nil {
		t.Fatalf("state %q: %v", buf[:n], err)
	}
	if st.Version != specs.Version || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName ||
		st.Pid != cmd.Process.Pid || st.Metadata != "meta=1" || st.State.ID != "ctr" || st.State.Status != specs.StateCreating {
		t.Errorf("state = %+v", st)
	}
	// The listener really is a seccomp notify descriptor.
	if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(listener)); link != "anon_inode:seccomp notify" {
		t.Errorf("received descriptor is %q", link)
	}

	answers := []libseccomp.ScmpNotifResp{
		{Val: 0},                   // pretend it worked
		{Error: int32(unix.EXDEV)}, // a specific errno
		{Flags: libseccomp.NotifRespFlagContinue}, // let the kernel run it
	}
	for i, a := range answers {
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(listener))
		if err != nil {
			t.Fatalf("notification %d: %v\nstderr:\n%s", i, err, stderr)
		}
		if name, _ := req.Data.Syscall.GetName(); name != "mkdirat" || req.Pid != uint32(cmd.Process.Pid) {
			t.Errorf("notification %d: syscall %q from pid %d", i, name, req.Pid)
		}
		a.ID = req.ID
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(listener), &a); err != nil {
			t.Fatalf("respond %d: %v", i, err)
		}
	}
	r := waitChild(t, cmd, stdout, stderr, p)
	r.mustExit(t)
	r.wantErrnos(t, 0, int(unix.EXDEV), 0)
	for name, exists := range map[string]bool{"faked": false, "denied": false, "real": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != exists {
			t.Errorf("%s: exists = %v, want %v", name, err == nil, exists)
		}
	}
	if !strings.Contains(r.stdout, "listener true") {
		t.Errorf("load returned no listener:\n%s", r.stdout)
	}
}

func TestDialListenerLongPath(t *testing.T) {
	// A directory whose path is longer than sun_path.
	dir := t.TempDir()
	for len(dir) < 2*sunPathMax {
		dir = filepath.Join(dir, strings.Repeat("d", 40))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(dfd) + "/l.sock"}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}

	conn, err := DialListener(filepath.Join(dir, "l.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if flags, err := unix.FcntlInt(conn.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("connection is not close-on-exec: %#x, %v", flags, err)
	}

	// One sendmsg carries the state and the descriptor.
	afd, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(afd)
	state, err := ProcessState(specs.State{ID: "x"}, 42, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sendNotify(conn, int(os.Stdin.Fd()), state); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(afd, buf, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != string(state) {
		t.Errorf("received %q", buf[:n])
	}
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err != nil || len(cmsgs) != 1 {
		t.Errorf("control messages %v, %v", cmsgs, err)
	} else if fds, err := unix.ParseUnixRights(&cmsgs[0]); err != nil || len(fds) != 1 {
		t.Errorf("descriptors %v, %v", fds, err)
	} else {
		unix.Close(fds[0])
	}
	if !strings.Contains(string(state), `"fds":["seccompFd"]`) || !strings.Contains(string(state), `"pid":42`) {
		t.Errorf("state = %s", state)
	}

	if _, err := DialListener(filepath.Join(dir, "missing.sock")); err == nil || !strings.Contains(err.Error(), "missing.sock") {
		t.Errorf("dial a missing socket: %v", err)
	}
}
