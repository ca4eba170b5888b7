package dircache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPublish(t *testing.T) {
	root := t.TempDir()
	final := filepath.Join(root, "entry")
	if err := Publish(final, func(dir string) error { return errors.New("boom") }); err == nil {
		t.Fatal("a failed build was published")
	}
	if left, _ := filepath.Glob(filepath.Join(root, "*")); len(left) != 0 {
		t.Fatalf("a failed build left %v", left)
	}
	built := 0
	build := func(dir string) error {
		built++
		return os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	}
	for i := 0; i < 2; i++ {
		if err := Publish(final, build); err != nil {
			t.Fatal(err)
		}
	}
	if built != 1 {
		t.Fatalf("built %d times, want once", built)
	}
	if st, err := os.Stat(final); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("entry %v %v, want a 0755 directory", st, err)
	}
}

func TestPrune(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-2 * StaleAfter)
	for _, n := range []string{"img-a", "img-b", "img-keep", ".tmp-img-x", "other"} {
		p := filepath.Join(root, n)
		os.Mkdir(p, 0o755)
		os.Chtimes(p, old, old)
	}
	os.Mkdir(filepath.Join(root, "img-new"), 0o755)
	Prune(root, "img-*", filepath.Join(root, "img-keep"))
	for n, want := range map[string]bool{"img-a": false, "img-b": false, "img-keep": true, ".tmp-img-x": false, "other": true, "img-new": true} {
		_, err := os.Stat(filepath.Join(root, n))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", n, err == nil, want)
		}
	}
}
