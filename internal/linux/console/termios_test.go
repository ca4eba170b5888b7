package console

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestMakeRaw(t *testing.T) {
	master, slave := openTestPty(t)
	fd := rawFd(t, slave)
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ICANON == 0 || before.Oflag&unix.OPOST == 0 {
		t.Fatalf("a new pty is expected to start cooked: lflag %#x oflag %#x", before.Lflag, before.Oflag)
	}

	restore, err := MakeRaw(fd)
	if err != nil {
		t.Fatalf("MakeRaw: %v", err)
	}
	raw, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Iflag&unix.ICRNL != 0 {
		t.Errorf("not raw: lflag %#x oflag %#x iflag %#x", raw.Lflag, raw.Oflag, raw.Iflag)
	}
	// Raw: a single byte with no newline is readable at once, and output is
	// not translated.
	if _, err := master.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := slave.Read(buf); err != nil || string(buf[:n]) != "a" {
		t.Fatalf("raw read got %q, %v", buf[:n], err)
	}
	if _, err := slave.Write([]byte("b\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := master.Read(buf); err != nil || string(buf[:n]) != "b\n" {
		t.Fatalf("raw output got %q, %v; want no \\r added", buf[:n], err)
	}

	if err := restore(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("restore left %+v, want %+v", *after, *before)
	}
}

func TestMakeRawNotTerminal(t *testing.T) {
	r, _, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakeRaw(rawFd(t, r)); err == nil {
		t.Fatal("MakeRaw on a pipe succeeded")
	}
	if IsTerminal(rawFd(t, r)) {
		t.Fatal("a pipe is a terminal")
	}
}

func TestWinsize(t *testing.T) {
	master, slave := openTestPty(t)
	want := &unix.Winsize{Row: 33, Col: 121}
	if err := SetWinsize(rawFd(t, master), want); err != nil {
		t.Fatalf("SetWinsize: %v", err)
	}
	// Set on the master, seen on the slave: the container's side.
	got, err := GetWinsize(rawFd(t, slave))
	if err != nil {
		t.Fatalf("GetWinsize: %v", err)
	}
	if got.Row != want.Row || got.Col != want.Col {
		t.Errorf("slave size %dx%d, want %dx%d", got.Row, got.Col, want.Row, want.Col)
	}
}
