package console

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func socketPair(t *testing.T) (parent, child *os.File) {
	t.Helper()
	parent, child, err := NewSocketPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		parent.Close()
		child.Close()
	})
	return parent, child
}

func countFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestSendRecvFd(t *testing.T) {
	parent, child := socketPair(t)
	if !isCloexec(t, parent) || !isCloexec(t, child) {
		t.Error("socket pair is not close-on-exec")
	}
	master, slave := openTestPty(t)
	n, err := unix.IoctlGetUint32(rawFd(t, master), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}

	if err := SendFd(child, master.Name(), master); err != nil {
		t.Fatalf("SendFd: %v", err)
	}
	// The sender's copy goes away, as the container init's does.
	master.Close()

	got, err := RecvFd(parent)
	if err != nil {
		t.Fatalf("RecvFd: %v", err)
	}
	defer got.Close()
	if got.Name() != "/dev/ptmx" {
		t.Errorf("received name %q, want /dev/ptmx", got.Name())
	}
	if !isCloexec(t, got) {
		t.Error("received descriptor is not close-on-exec")
	}
	if gotN, err := unix.IoctlGetUint32(rawFd(t, got), unix.TIOCGPTN); err != nil || gotN != n {
		t.Fatalf("received descriptor is pty %d (%v), want master of pty %d", gotN, err, n)
	}
	// Pollable, so deadlines work.
	if err := got.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Errorf("received master is not pollable: %v", err)
	}
	if _, err := slave.Write([]byte("through the socket\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, got, "through the socket\r\n")
}

// SendFd must not change the blocking mode of what it sends: receivers such
// as conmon expect the blocking master runc and crun send.
func TestSendFdKeepsBlockingMode(t *testing.T) {
	parent, child := socketPair(t)
	master, _ := openTestPty(t)
	if err := SendFd(child, "", master); err != nil {
		t.Fatal(err)
	}
	// Read the raw message the way go-runc's ReceiveMaster does.
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(rawFd(t, parent), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "/dev/ptmx" {
		t.Errorf("empty name not replaced by the file's name: %q", buf[:n])
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("want 1 control message, got %d (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("want 1 descriptor, got %v (%v)", fds, err)
	}
	defer unix.Close(fds[0])
	fl, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		t.Error("sent master is non-blocking")
	}
}

func TestRecvFdNoDescriptor(t *testing.T) {
	parent, child := socketPair(t)
	if _, err := child.Write([]byte("/dev/ptmx")); err != nil {
		t.Fatal(err)
	}
	_, err := RecvFd(parent)
	if !errors.Is(err, ErrNoDescriptor) {
		t.Fatalf("RecvFd of a message without descriptor: %v, want ErrNoDescriptor", err)
	}
	if !strings.Contains(err.Error(), "no file descriptor") {
		t.Errorf("error %q does not say what is missing", err)
	}
}

func TestRecvFdPeerClosed(t *testing.T) {
	parent, child := socketPair(t)
	child.Close()
	_, err := RecvFd(parent)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("RecvFd after the peer closed: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestRecvFdTooManyDescriptors(t *testing.T) {
	parent, child := socketPair(t)
	master, slave := openTestPty(t)
	before := countFds(t)
	rights := unix.UnixRights(rawFd(t, master), rawFd(t, slave))
	if err := unix.Sendmsg(rawFd(t, child), []byte("x"), rights, nil, 0); err != nil {
		t.Fatal(err)
	}
	if f, err := RecvFd(parent); err == nil {
		f.Close()
		t.Fatal("RecvFd accepted two descriptors")
	}
	if after := countFds(t); after != before {
		t.Errorf("%d descriptors open after the rejected message, %d before: leaked", after, before)
	}
}

func TestSendFdNameTooLong(t *testing.T) {
	_, child := socketPair(t)
	master, _ := openTestPty(t)
	if err := SendFd(child, strings.Repeat("x", maxNameLen), master); err == nil {
		t.Fatal("SendFd accepted a name go-runc would reject")
	}
}

// ConnectSocket against a listener like go-runc's NewTempConsoleSocket, and
// a receive done the way its ReceiveMaster does it.
func TestConnectSocket(t *testing.T) {
	for _, name := range []string{"short", "long"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name == "long" {
				dir = filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "console.sock")
			if name == "long" && len(path) < sunPathMax {
				t.Fatalf("path %q is not longer than sun_path", path)
			}
			l, err := listenUnix(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			sock, err := ConnectSocket(path)
			if err != nil {
				t.Fatalf("ConnectSocket: %v", err)
			}
			defer sock.Close()
			if !isCloexec(t, sock) {
				t.Error("console socket is not close-on-exec")
			}
			master, slave := openTestPty(t)
			if err := SendFd(sock, master.Name(), master); err != nil {
				t.Fatal(err)
			}

			conn, err := l.AcceptUnix()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, 4096)
			oob := make([]byte, unix.CmsgSpace(4))
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(msgs) != 1 {
				t.Fatalf("want 1 control message, got %d (%v)", len(msgs), err)
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil || len(fds) != 1 {
				t.Fatalf("want 1 descriptor, got %v (%v)", fds, err)
			}
			got := os.NewFile(uintptr(fds[0]), string(buf[:n]))
			defer got.Close()
			if _, err := slave.Write([]byte("hello shim\n")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, got, "hello shim")
		})
	}
}

// listenUnix listens at path even when it is longer than sun_path, the way
// a receiver with a long state directory might: bind through a short
// symlink to the directory.
func listenUnix(path string) (*net.UnixListener, error) {
	if len(path) < sunPathMax {
		return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	}
	short, err := os.MkdirTemp("", "bcs")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(short)
	link := filepath.Join(short, "l")
	if err := os.Symlink(filepath.Dir(path), link); err != nil {
		return nil, err
	}
	return net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(link, filepath.Base(path)), Net: "unix"})
}

func TestConnectSocketMissing(t *testing.T) {
	if _, err := ConnectSocket(filepath.Join(t.TempDir(), "absent.sock")); err == nil {
		t.Fatal("ConnectSocket to a missing socket succeeded")
	}
}
