package archive

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// lowerLayer is a base layer; upperLayer deletes from it with whiteouts.
func lowerLayer(t testing.TB) []byte {
	return mkTar(t,
		reg("keep", "lower", 0o644),
		reg("gone", "lower", 0o644),
		dirEnt("gonedir/", 0o755), reg("gonedir/deep", "lower", 0o644),
		dirEnt("opq/", 0o755), reg("opq/a", "lower", 0o644), dirEnt("opq/sub/", 0o755), reg("opq/sub/b", "lower", 0o644),
		dirEnt("plain/", 0o755), reg("plain/a", "lower", 0o644),
	)
}

func upperLayer(t testing.TB) []byte {
	return mkTar(t,
		reg(".wh.gone", "", 0),
		reg(".wh.gonedir", "", 0),
		dirEnt("opq/", 0o755),
		reg("opq/early", "upper", 0o644), // written before the marker: kept
		reg("opq/.wh..wh..opq", "", 0),
		reg("opq/late", "upper", 0o644),
		reg("plain/new", "upper", 0o644),
		reg(".wh.never-existed", "", 0),
		reg("nodir/.wh.x", "", 0),
	)
}

func names(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mergedView is what a container sees after both layers.
var mergedView = []string{"keep", "opq", "opq/early", "opq/late", "plain", "plain/a", "plain/new"}

func TestWhiteoutApply(t *testing.T) {
	dir := tmpDir(t)
	if _, err := apply(t, dir, lowerLayer(t), applyOpts(WhiteoutApply)); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, dir, upperLayer(t), applyOpts(WhiteoutApply)); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !equal(got, mergedView) {
		t.Errorf("tree after both layers:\n%q\nwant\n%q", got, mergedView)
	}
}

func TestWhiteoutOverlayFormat(t *testing.T) {
	dir := tmpDir(t)
	_, err := apply(t, dir, upperLayer(t), applyOpts(WhiteoutOverlay))
	if os.Geteuid() != 0 {
		// trusted.overlay.opaque needs CAP_SYS_ADMIN: a clear error.
		if err == nil {
			t.Fatal("an unprivileged caller set trusted.overlay.opaque")
		}
		t.Skipf("needs root for trusted.overlay.opaque: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gone", "gonedir", "never-existed", "nodir/x"} {
		st := lstat(t, filepath.Join(dir, n))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 character device", n, st.Mode, st.Rdev)
		}
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), overlayOpaque, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq: %s = %q, %v", overlayOpaque, buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir, "plain"), overlayOpaque, buf); err == nil {
		t.Error("plain is opaque")
	}
	// Nothing is deleted in this format, and the markers are not files.
	want := []string{"gone", "gonedir", "never-existed", "nodir", "nodir/x", "opq", "opq/early", "opq/late", "plain", "plain/new"}
	if got := names(t, dir); !equal(got, want) {
		t.Errorf("upper dir:\n%q\nwant\n%q", got, want)
	}
}

// The overlay format is what overlayfs reads: a read-only mount of the two
// layers shows the same view as applying them one onto the other.
func TestWhiteoutOverlayMount(t *testing.T) {
	requireRoot(t)
	base := tmpDir(t)
	lower, upper, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	if _, err := apply(t, lower, lowerLayer(t), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, upper, upperLayer(t), ApplyOptions{Whiteouts: WhiteoutOverlay}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+upper+":"+lower); err != nil {
		t.Skipf("overlayfs cannot be mounted here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	// One difference from WhiteoutApply: "nodir" exists only in the upper
	// layer (its whiteout needs a directory to live in), and overlayfs
	// lists a directory no lower layer merges into as it is, the whiteout
	// device included.
	want := []string{"keep", "nodir", "nodir/x", "opq", "opq/early", "opq/late", "plain", "plain/a", "plain/new"}
	if got := names(t, merged); !equal(got, want) {
		t.Errorf("overlay view:\n%q\nwant\n%q", got, want)
	}
	if got := readFile(t, filepath.Join(merged, "plain/a")); got != "lower" {
		t.Errorf("plain/a = %q", got)
	}
}

// WhiteoutNone writes .wh. names as the files they are.
func TestWhiteoutNone(t *testing.T) {
	dir := tmpDir(t)
	if _, err := apply(t, dir, lowerLayer(t), applyOpts(WhiteoutNone)); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, dir, upperLayer(t), applyOpts(WhiteoutNone)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gone", "gonedir/deep", "opq/a", ".wh.gone", "opq/.wh..wh..opq", "nodir/.wh.x"} {
		if st := lstat(t, filepath.Join(dir, n)); st.Mode&unix.S_IFMT != unix.S_IFREG {
			t.Errorf("%s: mode %o", n, st.Mode)
		}
	}
}
