package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The shim's socket is plain AF_UNIX through x/sys, with the descriptors in
// Go's poller through os.NewFile, rather than the net package: the shim is
// one process per container and this keeps it smaller.

// sunPathMax is the size of sockaddr_un.sun_path.
const sunPathMax = 108

// sockAddr returns an address for path, reaching a path too long for
// sun_path through /proc/self/fd and a descriptor of its directory, which
// the caller closes with done once bind or connect has returned.
func sockAddr(path string) (sa *unix.SockaddrUnix, done func(), err error) {
	if len(path) < sunPathMax {
		return &unix.SockaddrUnix{Name: path}, func() {}, nil
	}
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	name := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + filepath.Base(path)
	if len(name) >= sunPathMax {
		unix.Close(dfd)
		return nil, nil, fmt.Errorf("socket name %s: too long", filepath.Base(path))
	}
	return &unix.SockaddrUnix{Name: name}, func() { unix.Close(dfd) }, nil
}

// listenUnix binds a non-blocking stream socket at path with mode 0600 and
// listens on it.
func listenUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	sa, done, err := sockAddr(path)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	err = unix.Bind(fd, sa)
	done()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", path, err)
	}
	// Connecting needs write permission on the socket, which the usual
	// umask already withholds from others; the peer check in accept
	// covers the moment before this chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// accept waits for a connection on l. Connections from another user than
// the shim's are refused: the socket's mode already keeps them out, and
// this keeps them out where a directory's mode was wrong.
func accept(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var nfd int
		var aerr error
		err = rc.Read(func(fd uintptr) bool {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return aerr != unix.EAGAIN
		})
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, err
			}
			// The poller's own "use of closed file", which os does not
			// map to os.ErrClosed on a raw connection.
			return nil, fmt.Errorf("accept: %w (%v)", os.ErrClosed, err)
		}
		if aerr != nil {
			if aerr == unix.EINTR || aerr == unix.ECONNABORTED {
				continue
			}
			return nil, os.NewSyscallError("accept4", aerr)
		}
		cred, err := unix.GetsockoptUcred(nfd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
			unix.Close(nfd)
			continue
		}
		return os.NewFile(uintptr(nfd), "shim-conn"), nil
	}
}

// errNoListener is a connect that found nothing listening: the shim is
// gone (or not started yet).
var errNoListener = errors.New("nothing listens on the socket")

// dialUnix connects to the socket at path. A full backlog (EAGAIN) is
// retried until ctx ends.
func dialUnix(ctx context.Context, path string) (*os.File, error) {
	sa, done, err := sockAddr(path)
	if err != nil {
		return nil, err
	}
	defer done()
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("socket", err)
		}
		err = unix.Connect(fd, sa)
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		unix.Close(fd)
		switch err {
		case unix.ENOENT, unix.ECONNREFUSED:
			return nil, fmt.Errorf("connect to %s: %w", path, errNoListener)
		case unix.EAGAIN, unix.EINTR:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
}
