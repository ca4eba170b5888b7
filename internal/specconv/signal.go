package specconv

import (
	"strconv"
	"strings"
	"syscall"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// sigRTMin is SIGRTMIN as glibc and docker count it: the kernel's 32 plus
// the two real-time signals glibc keeps for itself.
const sigRTMin = 34

// StopSignal is the signal `docker stop` sends first: --stop-signal, else
// the image's STOPSIGNAL, else SIGTERM. The runtime spec has no place for
// it; the engine keeps it with the container.
func StopSignal(img *dockerspec.DockerOCIImage, opt string) (syscall.Signal, error) {
	s := opt
	if s == "" && img != nil {
		s = img.Config.StopSignal
	}
	if s == "" {
		return unix.SIGTERM, nil
	}
	sig, ok := parseSignal(s)
	if !ok {
		return 0, invalid("invalid stop signal %q", s)
	}
	return sig, nil
}

// parseSignal reads "SIGTERM", "TERM", "term", "15" or "SIGRTMIN+3".
func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, false
		}
		return syscall.Signal(n), true
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "+"))
			if err != nil || rest[0] != '+' {
				return 0, false
			}
			off = n
		}
		if off < 0 || sigRTMin+off > 64 {
			return 0, false
		}
		return syscall.Signal(sigRTMin + off), true
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			if err != nil || rest[0] != '-' {
				return 0, false
			}
			off = n
		}
		if off < 0 || 64-off < sigRTMin {
			return 0, false
		}
		return syscall.Signal(64 - off), true
	}
	sig := unix.SignalNum(name)
	return sig, sig != 0
}
