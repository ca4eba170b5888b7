package selfexe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloneIsSealedAndRuns(t *testing.T) {
	useEmptyDir(t)
	for name, clone := range map[string]func() (*os.File, error){
		"overlay-detached": func() (*os.File, error) { return overlay(selfExe, detachedEmpty) },
		"overlay-emptydir": func() (*os.File, error) { return overlay(selfExe, emptyDir) },
		"memfd":            func() (*os.File, error) { return memfd(selfExe) },
	} {
		t.Run(name, func(t *testing.T) { testClone(t, name, clone) })
	}
}

// useEmptyDir points EmptyDir into a temporary directory for the test.
func useEmptyDir(t *testing.T) string {
	old := EmptyDir
	EmptyDir = filepath.Join(t.TempDir(), "empty")
	t.Cleanup(func() { EmptyDir = old })
	return EmptyDir
}

func testClone(t *testing.T, name string, clone func() (*os.File, error)) {
	f, err := clone()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("needs root to mount: %v", err)
		}
		// Older kernels (6.1) refuse a detached lower layer; Clone then
		// uses the empty directory, tested too.
		if name == "overlay-detached" && errors.Is(err, unix.EINVAL) {
			t.Skipf("this kernel refuses a detached lower layer: %v", err)
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

// TestCloneUsesOverlay: as root, Clone gives the overlay, not a copy, on
// every kernel with overlayfs: old ones through the empty directory.
func TestCloneUsesOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	useEmptyDir(t)
	f, err := Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Fatalf("Clone gave a file on filesystem %#x, want the overlay", st.Type)
	}
}

// TestEmptyDirRefused: the empty directory is used only when it is one: not
// a symlink, not writable by others, with nothing in it.
func TestEmptyDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the directory must be owned by the runtime's user, root")
	}
	dir := useEmptyDir(t)
	fd, err := emptyDir()
	if err != nil {
		t.Fatalf("fresh directory: %v", err)
	}
	unix.Close(fd)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("made %s with %v (%v), want mode 0700", dir, st.Mode(), err)
	}
	other := filepath.Join(filepath.Dir(dir), "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func() error{
		"not empty": func() error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "berth-runtime"), nil, 0o755)
		},
		"writable": func() error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chmod(dir, 0o777)
		},
		"symlink": func() error { return os.Symlink(other, dir) },
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := spoil(); err != nil {
				t.Fatal(err)
			}
			if fd, err := emptyDir(); err == nil {
				unix.Close(fd)
				t.Fatalf("%s: accepted", name)
			}
		})
	}
}

// TestCloneFile: another binary than the running one, named through a
// symlink, comes back sealed the same way and runs as itself.
func TestCloneFile(t *testing.T) {
	useEmptyDir(t)
	src, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Skipf("no /bin/echo to clone: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	f, err := CloneFile(link)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Verify(f); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(len(src)) {
		t.Fatalf("clone is %v bytes (%v), the binary %d", st.Size(), err, len(src))
	}
	if w, err := os.OpenFile(Path(f), os.O_WRONLY, 0); err == nil {
		_, werr := w.Write([]byte("x"))
		w.Close()
		if werr == nil {
			t.Fatal("the clone could be written through a reopened descriptor")
		}
	}
	out, err := exec.Command(Path(f), "cloned").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "cloned" {
		t.Fatalf("run clone: %v: %q", err, out)
	}
}
