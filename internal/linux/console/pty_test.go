package console

import (
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func openTestPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, slave, err := OpenPty("/dev/ptmx")
	if err != nil {
		t.Fatalf("OpenPty: %v", err)
	}
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	return master, slave
}

func rawFd(t *testing.T, f *os.File) int {
	t.Helper()
	var fd int
	if err := withFd(f, func(d int) error { fd = d; return nil }); err != nil {
		t.Fatal(err)
	}
	return fd
}

func isCloexec(t *testing.T, f *os.File) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(rawFd(t, f)), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.FD_CLOEXEC != 0
}

// readUntil reads r until the accumulated output contains want.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(got.String(), want) {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read: %v (got %q, want %q)", err, got.String(), want)
		}
	}
	return got.String()
}

func checkPty(t *testing.T, master, slave *os.File) {
	t.Helper()
	if !isCloexec(t, master) || !isCloexec(t, slave) {
		t.Error("pty descriptors are not close-on-exec")
	}
	if !IsTerminal(rawFd(t, slave)) {
		t.Error("slave is not a terminal")
	}
	n, err := unix.IoctlGetUint32(rawFd(t, master), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN on master: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(rawFd(t, slave), &st); err != nil {
		t.Fatal(err)
	}
	if got := (unix.Major(st.Rdev)-ptySlaveMajor)*256 + unix.Minor(st.Rdev); got != n {
		t.Errorf("slave is pty %d, master is pty %d", got, n)
	}

	// Slave to master; the default line discipline turns \n into \r\n.
	if _, err := slave.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, master, "ping\r\n")
	// Master to slave, through canonical mode.
	if _, err := master.Write([]byte("pong\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, slave, "pong\n")
}

func TestOpenPty(t *testing.T) {
	master, slave := openTestPty(t)
	if master.Name() != "/dev/ptmx" {
		t.Errorf("master name %q, want /dev/ptmx", master.Name())
	}
	if !strings.HasPrefix(slave.Name(), "/dev/pts/") {
		t.Errorf("slave name %q, want /dev/pts/N", slave.Name())
	}
	checkPty(t, master, slave)
}

func TestOpenPtyPathFallback(t *testing.T) {
	usePeerIoctl = false
	defer func() { usePeerIoctl = true }()
	master, slave := openTestPty(t)
	checkPty(t, master, slave)
}

func TestOpenPtyDevptsNode(t *testing.T) {
	// /dev/pts/ptmx is usually mode 000 outside containers.
	if os.Geteuid() != 0 {
		t.Skip("opening the devpts ptmx node (mode 000 on the host) needs root")
	}
	master, slave, err := OpenPty("/dev/pts/ptmx")
	if err != nil {
		t.Fatalf("OpenPty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if !strings.HasPrefix(slave.Name(), "/dev/pts/") || strings.HasPrefix(slave.Name(), "/dev/pts/pts/") {
		t.Errorf("slave name %q, want /dev/pts/N", slave.Name())
	}
	checkPty(t, master, slave)
}

func TestOpenPtyNotMultiplexer(t *testing.T) {
	if _, _, err := OpenPty("/dev/null"); err == nil {
		t.Fatal("OpenPty(/dev/null) succeeded")
	}
	if _, _, err := OpenPty("/nonexistent/ptmx"); err == nil {
		t.Fatal("OpenPty of a missing path succeeded")
	}
}

// The path fallback must refuse a node that is not the master's own slave,
// as a container could put at /dev/pts/N.
func TestCheckSlaveRejectsOtherPty(t *testing.T) {
	_, slaveA := openTestPty(t)
	masterB, _ := openTestPty(t)
	nB, err := unix.IoctlGetUint32(rawFd(t, masterB), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSlave(rawFd(t, slaveA), slaveA.Name(), nB); err == nil {
		t.Error("checkSlave accepted the slave of another pty")
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := checkSlave(rawFd(t, null), "/dev/null", nB); err == nil {
		t.Error("checkSlave accepted /dev/null")
	}
}
