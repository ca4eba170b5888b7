package selfexe

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestCloneIsSealedAndRuns(t *testing.T) {
	f, err := Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Verify(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write to the sealed copy succeeded")
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
