package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLinkTree stages a layout-shaped tree: its directories made, its
// files the same inodes (hard links, no copy), and a symlink, which no
// image layout has, refused.
func TestLinkTree(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.json", "oci-layout", "blobs/sha256/abc"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "minbase")
	if err := linkTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.json", "oci-layout", "blobs/sha256/abc"} {
		a, errA := os.Stat(filepath.Join(src, f))
		b, errB := os.Stat(filepath.Join(dst, f))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v %v", f, errA, errB)
		}
		if a.Sys().(*syscall.Stat_t).Ino != b.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("%s was copied, not linked (same filesystem)", f)
		}
	}

	if err := os.Symlink("index.json", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := linkTree(src, filepath.Join(t.TempDir(), "minbase")); err == nil {
		t.Error("a symlink in the tree was staged")
	}
}
