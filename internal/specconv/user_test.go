package specconv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolveUser(t *testing.T) {
	t.Parallel()
	root := testRootfs(t)
	for _, tc := range []struct {
		user     string
		groupAdd []string
		uid, gid uint32
		groups   []uint32
		home     string
		err      string
	}{
		{user: "", uid: 0, gid: 0, groups: []uint32{0}, home: "/root"},
		{user: "root", uid: 0, gid: 0, groups: []uint32{0}, home: "/root"},
		{user: "berth", uid: 1000, gid: 1000, groups: []uint32{1000, 50, 29}, home: "/home/berth"},
		{user: "1000", uid: 1000, gid: 1000, groups: []uint32{1000, 50, 29}, home: "/home/berth"},
		// An explicit group replaces the primary one and drops memberships.
		{user: "berth:staff", uid: 1000, gid: 50, groups: []uint32{50}, home: "/home/berth"},
		{user: "1000:50", uid: 1000, gid: 50, groups: []uint32{50}, home: "/home/berth"},
		{user: "berth:", uid: 1000, gid: 1000, groups: []uint32{1000, 50, 29}, home: "/home/berth"},
		// Numeric ids with no entry are used as they are, with gid 0.
		{user: "4242", uid: 4242, gid: 0, groups: []uint32{0}, home: "/"},
		{user: "4242:4343", uid: 4242, gid: 4343, groups: []uint32{4343}, home: "/"},
		{user: ":staff", uid: 0, gid: 50, groups: []uint32{50}, home: "/root"},
		// A number matches uids only, never a name that looks like one.
		{user: "2000", uid: 2000, gid: 0, groups: []uint32{0}, home: "/"},
		{user: "berth:2000", uid: 1000, gid: 2000, groups: []uint32{2000}, home: "/home/berth"},
		// An empty home field is "/".
		{user: "homeless", uid: 1001, gid: 1001, groups: []uint32{1001}, home: "/"},
		{user: "berth", groupAdd: []string{"audio", "777", "daemon", "2000"}, uid: 1000, gid: 1000,
			groups: []uint32{1000, 50, 29, 777, 1, 4000}, home: "/home/berth"},
		{user: "nosuch", err: "unable to find user nosuch: no matching entries in passwd file"},
		{user: "berth:nosuch", err: "unable to find group nosuch: no matching entries in group file"},
		{user: "broken", err: "unable to find user broken"},
		{user: "berth", groupAdd: []string{"nosuch"}, err: "unable to find group nosuch"},
		{user: "2147483648", err: "uids and gids must be in range 0-2147483647"},
		{user: "0:4294967295", err: "uids and gids must be in range"},
		{user: "-1", err: "unable to find user -1"},
	} {
		t.Run(tc.user+"/"+strings.Join(tc.groupAdd, ","), func(t *testing.T) {
			u, err := resolveUser(root, tc.user, tc.groupAdd)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.user.UID != tc.uid || u.user.GID != tc.gid || !slices.Equal(u.user.AdditionalGids, tc.groups) || u.home != tc.home {
				t.Errorf("got uid %d gid %d groups %v home %q, want %d %d %v %q",
					u.user.UID, u.user.GID, u.user.AdditionalGids, u.home, tc.uid, tc.gid, tc.groups, tc.home)
			}
		})
	}
}

// TestResolveUserNoFiles: an image without /etc/passwd and /etc/group
// runs numeric users and refuses names.
func TestResolveUserNoFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	u, err := resolveUser(root, "33:44", []string{"55"})
	if err != nil {
		t.Fatal(err)
	}
	if u.user.UID != 33 || u.user.GID != 44 || !slices.Equal(u.user.AdditionalGids, []uint32{44, 55}) || u.home != "/" {
		t.Errorf("got %+v home %q", u.user, u.home)
	}
	_, err = resolveUser(root, "root", nil)
	wantErr(t, err, "unable to find user root")
}

// TestResolveUserHostileFiles: /etc/passwd and /etc/group that point out
// of the rootfs are read inside it, never from the host; files that are
// not regular are refused instead of blocking or reading forever.
func TestResolveUserHostileFiles(t *testing.T) {
	t.Parallel()
	// outside is a host directory with an /etc/passwd that makes "evil"
	// root; the rootfs has its own copy of that path with uid 4321.
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "passwd"), "evil:x:0:0::/host:/bin/sh\n")
	inside := "evil:x:4321:4321::/inside:/bin/sh\n"

	for _, tc := range []struct {
		name string
		make func(t *testing.T, root string)
		uid  uint32
		home string
		err  string
	}{
		{"absolute symlink", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, outside, "passwd"), inside)
			symlink(t, filepath.Join(outside, "passwd"), filepath.Join(root, "etc/passwd"))
		}, 4321, "/inside", ""},
		{"relative symlink climbing out", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, outside, "passwd"), inside)
			symlink(t, strings.Repeat("../", 30)+strings.TrimPrefix(outside, "/")+"/passwd", filepath.Join(root, "etc/passwd"))
		}, 4321, "/inside", ""},
		{"symlinked /etc directory", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, outside, "passwd"), inside)
			symlink(t, outside, filepath.Join(root, "etc"))
		}, 4321, "/inside", ""},
		{"symlink to a host file missing in the rootfs", func(t *testing.T, root string) {
			symlink(t, filepath.Join(outside, "passwd"), filepath.Join(root, "etc/passwd"))
		}, 0, "", "unable to find user evil"},
		{"symlink to /proc/self/root", func(t *testing.T, root string) {
			symlink(t, "/proc/self/root"+outside+"/passwd", filepath.Join(root, "etc/passwd"))
		}, 0, "", "unable to find user evil"},
		{"fifo", func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 0, "", "/etc/passwd in the image is not a regular file"},
		{"directory", func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "etc/passwd"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, 0, "", "not a regular file"},
		{"symlink loop", func(t *testing.T, root string) {
			symlink(t, "/etc/passwd", filepath.Join(root, "etc/passwd"))
		}, 0, "", "too many levels of symbolic links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.name == "symlinked /etc directory" {
				os.Remove(filepath.Join(root, "etc"))
			}
			tc.make(t, root)
			u, err := resolveUser(root, "evil", nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error mentioning %q", u, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.user.UID != tc.uid || u.home != tc.home {
				t.Errorf("evil is uid %d home %q, want %d %q (read from the rootfs, not the host)", u.user.UID, u.home, tc.uid, tc.home)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestResolveUserTooBig: an oversized /etc/passwd is refused by size, not
// read.
func TestResolveUserTooBig(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	p := filepath.Join(root, "etc/passwd")
	writeFile(t, p, "")
	if err := os.Truncate(p, maxIDFile+1); err != nil {
		t.Fatal(err)
	}
	_, err := resolveUser(root, "root", nil)
	wantErr(t, err, "/etc/passwd", "bytes")
}
