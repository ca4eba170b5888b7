package console

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd refers to a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw puts the terminal fd in raw mode, as cfmakeraw(3) describes it: no
// line editing, echo, signal characters, or input and output translation, and
// reads returning as soon as one byte is there. It is meant for the user's own
// terminal while the runtime proxies a container's terminal, so that ^C, ^Z
// and the like reach the container instead of the runtime.
//
// restore puts back the settings fd had before; call it before the process
// exits, or the user's shell is left in raw mode.
func MakeRaw(fd int) (restore func() error, err error) {
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("get terminal attributes of descriptor %d: %w", fd, os.NewSyscallError("ioctl TCGETS", err))
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := setTermios(fd, &raw); err != nil {
		return nil, fmt.Errorf("make descriptor %d raw: %w", fd, err)
	}
	return func() error {
		if err := setTermios(fd, saved); err != nil {
			return fmt.Errorf("restore terminal attributes of descriptor %d: %w", fd, err)
		}
		return nil
	}, nil
}

func setTermios(fd int, t *unix.Termios) error {
	// TCSETS applies at once; a write pending on the user's terminal is
	// not worth waiting for (TCSETSW) when switching modes interactively.
	err := retryEINTR(func() error { return unix.IoctlSetTermios(fd, unix.TCSETS, t) })
	if err != nil {
		return os.NewSyscallError("ioctl TCSETS", err)
	}
	return nil
}

// GetWinsize returns the window size of the terminal fd. On a pty master it
// is the size of its slave.
func GetWinsize(fd int) (*unix.Winsize, error) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return nil, fmt.Errorf("get window size of descriptor %d: %w", fd, os.NewSyscallError("ioctl TIOCGWINSZ", err))
	}
	return ws, nil
}

// SetWinsize sets the window size of the terminal fd; on a pty master the
// kernel applies it to the slave and sends SIGWINCH to the slave's foreground
// process group when the size changes.
func SetWinsize(fd int, ws *unix.Winsize) error {
	err := retryEINTR(func() error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
	if err != nil {
		return fmt.Errorf("set window size of descriptor %d: %w", fd, os.NewSyscallError("ioctl TIOCSWINSZ", err))
	}
	return nil
}
