package console

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// usePeerIoctl lets tests exercise the /dev/pts/N fallback on kernels that
// have TIOCGPTPEER.
var usePeerIoctl = true

// Slave majors of Unix98 ptys: UNIX98_PTY_SLAVE_MAJOR (136) and the
// UNIX98_PTY_MAJOR_COUNT-1 majors after it, 256 minors each
// (include/uapi/linux/major.h, drivers/tty/pty.c).
const (
	ptySlaveMajor      = 136
	ptySlaveMajorCount = 8
)

// OpenPty opens a new pty through ptmx, which is the multiplexer of the devpts
// instance the pty should live in: "/dev/ptmx" inside a container (a device
// node or a symlink to pts/ptmx) or a devpts "ptmx" node itself.
//
// The master is unlocked (TIOCSPTLCK 0) and the slave is opened from it with
// TIOCGPTPEER, so no path in the container's /dev/pts is trusted; on kernels
// without TIOCGPTPEER (before 4.13) the slave is opened by path and checked to
// be the devpts slave with the master's index. Both descriptors are O_CLOEXEC
// and opened O_NOCTTY, and both are in blocking mode.
//
// The master's Name is ptmx (what runc sends as the console-socket name); the
// slave's Name is the slave's path, such as "/dev/pts/0", which is what a
// caller bind-mounting the console onto /dev/console needs to know.
func OpenPty(ptmx string) (master, slave *os.File, err error) {
	mfd, err := openRetry(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("open pty multiplexer %s: %w", ptmx, err)
	}
	defer func() {
		if err != nil {
			unix.Close(mfd)
		}
	}()

	// TIOCGPTN answers only on a pty master, so it also proves that ptmx
	// really was a pty multiplexer and not some other node in its place.
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, nil, fmt.Errorf("get pty number from %s: %w", ptmx, os.NewSyscallError("ioctl TIOCGPTN", err))
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, fmt.Errorf("unlock pty %d: %w", n, os.NewSyscallError("ioctl TIOCSPTLCK", err))
	}

	ptsDir, err := slaveDir(mfd, ptmx)
	if err != nil {
		return nil, nil, err
	}
	slavePath := filepath.Join(ptsDir, strconv.FormatUint(uint64(n), 10))

	sfd := -1
	if usePeerIoctl {
		sfd, err = peerOpen(mfd)
		switch {
		case err == nil:
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTTY):
			// The kernel predates TIOCGPTPEER: fall back to the path.
			sfd = -1
		default:
			return nil, nil, fmt.Errorf("open pty slave %d from its master: %w", n, err)
		}
	}
	if sfd < 0 {
		sfd, err = openSlaveByPath(slavePath, n)
		if err != nil {
			return nil, nil, err
		}
	}

	return os.NewFile(uintptr(mfd), ptmx), os.NewFile(uintptr(sfd), slavePath), nil
}

// peerOpen asks the kernel for a descriptor of the master's own slave
// (TIOCGPTPEER, Linux 4.13). Its argument is the open flags, passed by value.
func peerOpen(mfd int) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER,
			uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, os.NewSyscallError("ioctl TIOCGPTPEER", errno)
		}
		return int(r), nil
	}
}

// slaveDir finds the directory holding the slaves of the pty whose master is
// mfd: if ptmx was the "ptmx" node of a devpts mount, its own directory;
// otherwise (the /dev/ptmx device node or a symlink resolved to it) the "pts"
// directory next to it, which is where the kernel looks for the devpts
// instance since Linux 4.7.
func slaveDir(mfd int, ptmx string) (string, error) {
	var st unix.Statfs_t
	if err := retryEINTR(func() error { return unix.Fstatfs(mfd, &st) }); err != nil {
		return "", fmt.Errorf("statfs %s: %w", ptmx, os.NewSyscallError("fstatfs", err))
	}
	if st.Type == unix.DEVPTS_SUPER_MAGIC {
		return filepath.Dir(ptmx), nil
	}
	return filepath.Join(filepath.Dir(ptmx), "pts"), nil
}

// openSlaveByPath is the fallback for kernels without TIOCGPTPEER. The path is
// in a directory the container controls, so the final component is not
// followed if it is a symlink, and what was opened must be a devpts character
// device whose device number is the one of slave n.
func openSlaveByPath(path string, n uint32) (int, error) {
	fd, err := openRetry(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("open pty slave %s: %w", path, err)
	}
	if err := checkSlave(fd, path, n); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func checkSlave(fd int, path string, n uint32) error {
	var fs unix.Statfs_t
	if err := retryEINTR(func() error { return unix.Fstatfs(fd, &fs) }); err != nil {
		return fmt.Errorf("statfs pty slave %s: %w", path, os.NewSyscallError("fstatfs", err))
	}
	if fs.Type != unix.DEVPTS_SUPER_MAGIC {
		return fmt.Errorf("check pty slave %s: not on a devpts filesystem (type %#x)", path, fs.Type)
	}
	var st unix.Stat_t
	if err := retryEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return fmt.Errorf("stat pty slave %s: %w", path, os.NewSyscallError("fstat", err))
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR ||
		major < ptySlaveMajor || major >= ptySlaveMajor+ptySlaveMajorCount ||
		(major-ptySlaveMajor)*256+minor != n {
		return fmt.Errorf("check pty slave %s: device %d:%d is not slave %d", path, major, minor, n)
	}
	return nil
}

// openRetry opens path, retrying EINTR (which opening a tty can return), and
// returns a *os.PathError.
func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func retryEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}

// withFd runs fn with the descriptor of f without changing f's blocking mode
// (f.Fd would switch a pollable file to blocking) and keeps f from being closed
// meanwhile.
func withFd(f syscall.Conn, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("get raw descriptor: %w", err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("get raw descriptor: %w", err)
	}
	return ferr
}
