package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNoDescriptor is returned by RecvFd when a message arrived without a
// descriptor in it.
var ErrNoDescriptor = errors.New("message carried no file descriptor")

// maxNameLen bounds the name sent with a descriptor. go-runc's ReceiveMaster
// and runc's RecvFile read the name into a 4096-byte buffer and reject a
// message that fills it.
const maxNameLen = 4096

// sunPathMax is the size of sockaddr_un.sun_path on Linux.
const sunPathMax = 108

// ConnectSocket connects to the unix stream socket listening at path (the
// --console-socket argument) and returns it as a blocking, O_CLOEXEC
// *os.File, ready for SendFd or to be passed to a child through
// exec.Cmd.ExtraFiles (which clears O_CLOEXEC in the child only).
//
// Paths longer than sun_path are reached through /proc/self/fd, so a deep
// state directory still works. A listener of type SOCK_SEQPACKET is accepted
// too, for receivers that chose it.
func ConnectSocket(path string) (*os.File, error) {
	target := path
	if len(path) >= sunPathMax {
		pfd, err := openRetry(path, unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("connect to console socket: %w", err)
		}
		defer unix.Close(pfd)
		target = "/proc/self/fd/" + strconv.Itoa(pfd)
	}
	fd, err := dialUnix(target, unix.SOCK_STREAM)
	if errors.Is(err, unix.EPROTOTYPE) {
		fd, err = dialUnix(target, unix.SOCK_SEQPACKET)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func dialUnix(path string, typ int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	// An AF_UNIX connect interrupted while waiting for room in the
	// listener's backlog has not connected, so it is simply retried.
	sa := &unix.SockaddrUnix{Name: path}
	if err := retryEINTR(func() error { return unix.Connect(fd, sa) }); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// NewSocketPair returns a connected pair of unix stream sockets, both
// blocking and O_CLOEXEC: the runtime keeps parent and calls RecvFd on it,
// and passes child to the container's init in place of a --console-socket
// connection.
//
// The caller must close its copy of child once the init has been started, so
// that RecvFd on parent sees end of file, instead of blocking forever, if the
// init dies before sending the master.
func NewSocketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create console socket pair: %w", os.NewSyscallError("socketpair", err))
	}
	return os.NewFile(uintptr(fds[0]), "console-socket-parent"),
		os.NewFile(uintptr(fds[1]), "console-socket-child"), nil
}

// SendFd sends f over the connected unix socket sock in one message whose
// data is name and whose SCM_RIGHTS control message holds f's descriptor and
// nothing else: the console-socket contract. An empty name is replaced by
// f.Name(), because a stream socket drops control data sent with no bytes.
// f's blocking mode is left as it is.
func SendFd(sock *os.File, name string, f *os.File) error {
	if name == "" {
		name = f.Name()
	}
	if name == "" {
		return fmt.Errorf("send descriptor: empty name")
	}
	if len(name) >= maxNameLen {
		return fmt.Errorf("send descriptor %.40q...: name longer than %d bytes", name, maxNameLen-1)
	}
	return withFd(f, func(fd int) error {
		rights := unix.UnixRights(fd)
		rc, err := sock.SyscallConn()
		if err != nil {
			return fmt.Errorf("send descriptor %s: %w", name, err)
		}
		var serr error
		werr := rc.Write(func(sfd uintptr) bool {
			for {
				n, err := unix.SendmsgN(int(sfd), []byte(name), rights, nil, unix.MSG_NOSIGNAL)
				switch {
				case err == unix.EINTR:
					continue
				case err == unix.EAGAIN:
					return false // pollable socket: wait for room
				case err != nil:
					serr = os.NewSyscallError("sendmsg", err)
				case n != len(name):
					serr = fmt.Errorf("short write: %d of %d bytes", n, len(name))
				}
				return true
			}
		})
		if werr != nil {
			return fmt.Errorf("send descriptor %s: %w", name, werr)
		}
		if serr != nil {
			return fmt.Errorf("send descriptor %s: %w", name, serr)
		}
		return nil
	})
}

// RecvFd receives one descriptor sent by SendFd (or by runc, crun or any
// runtime honouring --console-socket) on sock and returns it as a *os.File
// named after the message's data. The descriptor is installed O_CLOEXEC
// (MSG_CMSG_CLOEXEC) and switched to non-blocking mode, so the returned file
// is in Go's poller and works with deadlines and Proxy.
//
// It returns ErrNoDescriptor if the message had none, an error wrapping
// io.ErrUnexpectedEOF if the peer closed without sending, and an error
// (closing whatever arrived) if the message held more than one descriptor.
func RecvFd(sock *os.File) (*os.File, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive descriptor: %w", err)
	}
	buf := make([]byte, maxNameLen)
	// Room for a few descriptors, so that a sender passing more than one is
	// detected and its descriptors closed rather than silently truncated.
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(sfd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(sfd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			switch rerr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			return true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("receive descriptor: %w", err)
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive descriptor: %w", os.NewSyscallError("recvmsg", rerr))
	}

	fds, perr := parseRights(oob[:oobn])
	if perr == nil && flags&unix.MSG_CTRUNC != 0 {
		perr = errors.New("control message truncated")
	}
	if perr == nil && len(fds) > 1 {
		perr = fmt.Errorf("got %d descriptors, want 1", len(fds))
	}
	if perr != nil {
		closeAll(fds)
		return nil, fmt.Errorf("receive descriptor: %w", perr)
	}
	if len(fds) == 0 {
		if n == 0 {
			return nil, fmt.Errorf("receive descriptor: peer closed the socket before sending: %w", io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("receive descriptor (data %.64q): %w", buf[:n], ErrNoDescriptor)
	}
	if n >= maxNameLen {
		closeAll(fds)
		return nil, fmt.Errorf("receive descriptor: name longer than %d bytes", maxNameLen-1)
	}

	fd := fds[0]
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("receive descriptor: %w", os.NewSyscallError("fcntl", err))
	}
	name := string(buf[:n])
	if name == "" {
		name = "received-fd"
	}
	return os.NewFile(uintptr(fd), name), nil
}

// parseRights returns every descriptor in the SCM_RIGHTS messages of oob,
// and an error if oob holds anything else. On error the descriptors found so
// far are still returned, for the caller to close.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			return fds, fmt.Errorf("unexpected control message level %d type %d", msgs[i].Header.Level, msgs[i].Header.Type)
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, fmt.Errorf("parse descriptors: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
