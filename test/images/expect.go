package images

import (
	"time"

	"github.com/berth-project/berth/test/fixture"
	digest "github.com/opencontainers/go-digest"
)

// Kind is the type of a file in an image's merged view.
type Kind string

// The kinds of file an image holds.
const (
	KindDir     Kind = "dir"
	KindFile    Kind = "file"
	KindSymlink Kind = "symlink"
	KindChar    Kind = "char"
	KindBlock   Kind = "block"
	KindFIFO    Kind = "fifo"
)

// Entry is what one path must be in the merged view of an image.
type Entry struct {
	Kind Kind
	// Mode is the permission bits with setuid (04000), setgid (02000) and
	// sticky (01000), as chmod takes them. Not checked for symlinks.
	Mode     uint32
	UID, GID int
	// Size and Digest are a regular file's length and content digest;
	// an empty Digest is not checked (busybox's binaries vary with the
	// Debian package).
	Size   int64
	Digest digest.Digest
	// Target is a symlink's target, byte for byte.
	Target string
	// Major and Minor are a device's numbers.
	Major, Minor uint32
	// Xattrs are exactly the user.* and security.capability extended
	// attributes the file has; nil means none of them. Other namespaces
	// (trusted.overlay.*, security.selinux) are the unpacker's business.
	Xattrs map[string]string
	// LinkedTo is another path that must be the same inode (a hardlink).
	LinkedTo string
	// ModTime is the mtime of anything but a directory (whose mtime
	// changes as an unpacker creates its children); zero is not checked.
	ModTime time.Time
}

// Expect describes the merged view of an image's layers: what a pull and
// unpack (or a container's root) must show.
type Expect struct {
	// Entries are paths relative to the root, without a leading slash.
	Entries map[string]Entry
	// Absent are paths that must not exist (whited out, hidden by an
	// opaque directory, or whiteout markers that must not leak through).
	Absent []string
	// Listings are directories whose complete list of names is known,
	// sorted.
	Listings map[string][]string
}

// LayeredExpect returns the merged view of Layered: every path its own
// layers leave behind and a few of busybox's, the paths its whiteouts
// remove, and the listings of the directories they change. It is written
// from what the layers mean, not from their bytes, and the package's tests
// check it against a merge of the layers' tar headers. A fresh value each
// call: callers may change theirs.
func LayeredExpect() Expect {
	t := layeredTime
	dir := func(mode uint32) Entry { return Entry{Kind: KindDir, Mode: mode} }
	file := func(mode uint32, content string) Entry {
		return Entry{Kind: KindFile, Mode: mode, Size: int64(len(content)), Digest: digest.FromString(content), ModTime: t}
	}
	link := func(target string) Entry { return Entry{Kind: KindSymlink, Target: target, ModTime: t} }
	owned := func(e Entry, uid, gid int) Entry { e.UID, e.GID = uid, gid; return e }
	hardlink := func(e Entry, to string) Entry { e.LinkedTo = to; return e }
	xattrs := func(e Entry, x map[string]string) Entry { e.Xattrs = x; return e }

	hard := file(0o644, "one inode, three names\n")
	return Expect{
		Entries: map[string]Entry{
			// From busybox, untouched.
			"bin":         dir(0o755),
			"bin/busybox": {Kind: KindFile, Mode: 0o755},
			"bin/sh":      {Kind: KindSymlink, Target: "busybox"},
			"tmp":         dir(0o1777),
			"home/berth":  owned(dir(0o755), fixture.BerthUID, fixture.BerthGID),

			// A file replaced without a whiteout, with a new mode and group.
			"etc/app":            dir(0o755),
			"etc/app/config.txt": owned(file(0o640, "mode=v2\n"), 0, fixture.StaffGID),
			// Whited out, then written again by a later layer.
			"usr/share/recreate.txt": file(0o600, "after the whiteout\n"),
			// A directory replaced by a file.
			"opt/kind": file(0o644, "a file where a directory was\n"),
			// An opaque directory: its own new mode and one new file.
			"var/lib/opaque":         dir(0o750),
			"var/lib/opaque/new.txt": file(0o644, "only this survives the opaque whiteout\n"),

			"links/hard-a":     hard,
			"links/hard-b":     hardlink(hard, "links/hard-a"),
			"links/sub/hard-c": hardlink(hard, "links/hard-a"),
			"links/rel":        link("../etc/app/config.txt"),
			"links/abs":        link("/etc/app/config.txt"),
			"links/dangling":   link("/nonexistent/target"),
			"links/dir":        link("../var/lib"),
			"links/up":         link("../../../../../etc/passwd"),

			"bin/netbind": xattrs(file(0o755, "#!/bin/sh\necho may bind ports below 1024\n"), map[string]string{
				// VFS_CAP_REVISION_2 | effective; permitted: bit 10.
				"security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
				"user.berth.note":     "set by the layer",
			}),
			"dev/mynull": {Kind: KindChar, Mode: 0o666, Major: 1, Minor: 3, ModTime: t},
			"srv/fifo":   {Kind: KindFIFO, Mode: 0o620, ModTime: t},
			"srv/empty":  file(0o644, ""),
			"srv/sparse": {
				Kind: KindFile, Mode: 0o644, Size: 1 << 20, ModTime: t,
				Digest: "sha256:f14ca969b5bdbf4299f1ac906b252f7206e4570e1a97cb5a06f5f5c52f024736",
			},
			"srv/owned":             owned(dir(0o750), fixture.BerthUID, fixture.BerthGID),
			"srv/owned/by-berth":    owned(file(0o640, "owned by berth\n"), fixture.BerthUID, fixture.BerthGID),
			"srv/owned/unnamed-ids": owned(file(0o604, "4242:4343\n"), 4242, 4343),
			"srv/private":           dir(0o700),
			"srv/private/secret":    file(0o600, "secret\n"),
			"srv/shared":            dir(0o1777),
			"srv/long/this-file-name-is-longer-than-the-hundred-bytes-a-ustar-header-can-hold-so-the-layer-needs-a-pax-path-record.txt": file(0o644, "long\n"),
			"srv/unicode/héllo wörld – 日本語.txt": file(0o644, "unicode\n"),
			"usr/local/bin/setuid-tool":         file(0o4755, "#!/bin/sh\nid -u\n"),
			"usr/local/bin/setgid-tool":         owned(file(0o2755, "#!/bin/sh\nid -g\n"), 0, fixture.StaffGID),

			"app":                 dir(0o755),
			"app/run.sh":          file(0o755, "#!/bin/sh\necho \"layered: $*\"\n"),
			"data":                dir(0o755),
			"home/berth/.profile": owned(file(0o644, "export APP_MODE=test\n"), fixture.BerthUID, fixture.BerthGID),
		},
		Absent: []string{
			"etc/app/removed.txt",
			"etc/app/.wh.removed.txt",
			"opt/gone",
			"opt/.wh.gone",
			"opt/kind/inner",
			"usr/share/.wh.recreate.txt",
			"var/lib/opaque/a.txt",
			"var/lib/opaque/b.txt",
			"var/lib/opaque/sub",
			"var/lib/opaque/.wh..wh..opq",
		},
		Listings: map[string][]string{
			"etc/app":        {"config.txt"},
			"opt":            {"kind"},
			"var/lib":        {"opaque"},
			"var/lib/opaque": {"new.txt"},
			"links":          {"abs", "dangling", "dir", "hard-a", "hard-b", "rel", "sub", "up"},
			"links/sub":      {"hard-c"},
			"srv/owned":      {"by-berth", "unnamed-ids"},
		},
	}
}
