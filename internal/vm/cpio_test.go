package vm

import (
	"bytes"
	"strconv"
	"testing"
)

type cpioEntry struct {
	name  string
	mode  uint32
	rdev  [2]int
	data  string
	nlink int
}

// readCpio parses a newc archive, checking the alignment the kernel needs.
func readCpio(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header field %d at %d: %v", i, off, err)
		}
		return int(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d", off)
		}
		mode, nlink, size, rmaj, rmin, nameLen := field(1), field(4), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+nameLen-1])
		dataOff := align(off + 110 + nameLen)
		data := string(b[dataOff : dataOff+size])
		off = align(dataOff + size)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, uint32(mode), [2]int{rmaj, rmin}, data, nlink})
	}
}

func TestCpioRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := &cpioWriter{w: &buf}
	w.Dir("/bin", 0o755)
	w.File("bin/busybox", 0o755, []byte("12345"))
	w.File("init", 0o700, []byte("#!/bin/sh\n"))
	w.Symlink("bin/sh", "busybox")
	w.CharDev("dev/console", 0o600, 5, 1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []cpioEntry{
		{"bin", 0o040755, [2]int{}, "", 2},
		{"bin/busybox", 0o100755, [2]int{}, "12345", 1},
		{"init", 0o100700, [2]int{}, "#!/bin/sh\n", 1},
		{"bin/sh", 0o120777, [2]int{}, "busybox", 1},
		{"dev/console", 0o020600, [2]int{5, 1}, "", 1},
	}
	got := readCpio(t, buf.Bytes())
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
