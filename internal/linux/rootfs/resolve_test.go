package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func rootDir(t *testing.T) (string, *os.File) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return dir, f
}

// Symlinks in an image that point out of the rootfs, absolutely or with
// "..", must resolve inside it.
func TestPrepareTargetStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	dir, root := rootDir(t)
	os.Symlink(outside, filepath.Join(dir, "abs"))
	os.Symlink("../../../../../../"+outside, filepath.Join(dir, "rel"))
	for _, p := range []string{"/abs/x", "/rel/y", "/abs/../../z"} {
		f, err := PrepareTarget(root, p, true)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f.Close()
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("created outside the root: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "x")); err != nil {
		t.Errorf("absolute link target not created inside the root: %v", err)
	}
}

// A dangling symlink as the final component (Debian's /etc/resolv.conf)
// gets its target created inside the root.
func TestPrepareTargetDanglingFileLink(t *testing.T) {
	dir, root := rootDir(t)
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.Symlink("../run/resolve/stub.conf", filepath.Join(dir, "etc/resolv.conf"))
	f, err := PrepareTarget(root, "/etc/resolv.conf", false)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Lstat(filepath.Join(dir, "run/resolve/stub.conf"))
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("link target not created as a file: %v", err)
	}
}

func TestSymlinkLoop(t *testing.T) {
	dir, root := rootDir(t)
	os.Symlink("b", filepath.Join(dir, "a"))
	os.Symlink("a", filepath.Join(dir, "b"))
	if _, err := PrepareTarget(root, "/a/x", true); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("got %v, want ELOOP", err)
	}
}

// proc and sysfs targets refuse any symlink (CVE-2019-19921 class).
func TestNoSymlinksForProc(t *testing.T) {
	dir, root := rootDir(t)
	os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755)
	os.Symlink("/elsewhere", filepath.Join(dir, "proc"))
	if _, err := mkdirAll(root, "proc", 0o555, noSymlinks); err == nil {
		t.Fatal("a symlinked /proc was accepted as a proc mount target")
	}
}
