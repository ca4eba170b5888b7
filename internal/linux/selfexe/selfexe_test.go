package selfexe

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloneIsSealedAndRuns(t *testing.T) {
	for name, clone := range map[string]func() (*os.File, error){"overlay": overlay, "memfd": memfd} {
		t.Run(name, func(t *testing.T) { testClone(t, clone) })
	}
}

func testClone(t *testing.T, clone func() (*os.File, error)) {
	f, err := clone()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("needs root to mount: %v", err)
		}
		// Older kernels refuse a lower layer named through /proc/self/fd
		// (6.1 does); Clone then falls back to the memfd, tested below.
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("this kernel cannot mount the overlay: %v", err)
		}
		t.Fatal(err)
	}
	defer f.Close()
	if err := Verify(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write to the sealed copy succeeded")
	}
	// Reopening for writing, as CVE-2019-5736 did through /proc/PID/exe.
	// The overlay refuses the open (EROFS), the memfd's seals the write.
	if w, err := os.OpenFile(Path(f), os.O_WRONLY, 0); err == nil {
		_, werr := w.Write([]byte("x"))
		w.Close()
		if werr == nil {
			t.Fatal("the copy could be written through a reopened descriptor")
		}
	}
	if err := f.Truncate(0); err == nil {
		t.Fatal("truncate of the sealed copy succeeded")
	}
	self, _ := os.Stat("/proc/self/exe")
	st, _ := f.Stat()
	if st.Size() != self.Size() {
		t.Fatalf("copy is %d bytes, binary %d", st.Size(), self.Size())
	}
	// The copy is the test binary itself: running it lists a test name.
	cmd := exec.Command(Path(f), "-test.list", "TestCloneIsSealedAndRuns")
	cmd.ExtraFiles = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run copy: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "TestCloneIsSealedAndRuns") {
		t.Fatalf("unexpected output %q", out)
	}
}
