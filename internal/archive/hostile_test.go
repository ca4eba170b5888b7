package archive

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostileCase is one attack: a layer (and, for WhiteoutApply, what the
// lower layers left in the tree), with what Apply must do about it. Every
// case also checks that nothing outside the root changed.
type hostileCase struct {
	name     string
	root     bool                                      // needs root (mknod)
	format   WhiteoutFormat                            //
	lower    func(t *testing.T, s *sandbox)            // the tree before the layer
	layer    func(s *sandbox) []tarEntry               //
	wantErr  error                                     // nil: success; errAny: some error
	confined func(t *testing.T, s *sandbox, err error) // what happened inside
}

var errAny = errors.New("any error")

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	return err == nil
}

func TestApplyHostile(t *testing.T) {
	long := strings.Repeat("a/", pathMax/2) + "f"
	cases := []hostileCase{{
		name:    "dotdot",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("../outside/pwned", "x", 0o644)} },
		wantErr: ErrBreakout,
	}, {
		name:    "dotdot in the middle",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("a/b/../../../outside/secret", "x", 0o644)} },
		wantErr: ErrBreakout,
	}, {
		name: "absolute name",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{reg("/outside/pwned", "x", 0o644), reg(filepath.Join(s.outside, "secret"), "x", 0o644)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if !exists(t, filepath.Join(s.root, "outside/pwned")) || !exists(t, filepath.Join(s.root, s.outside, "secret")) {
				t.Error("absolute names were not written beneath the root")
			}
		},
	}, {
		name: "write through a relative symlink",
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("evil", "../outside"), dirEnt("outside/", 0o755), reg("evil/secret", "pwned", 0o644), reg("evil/sub/secret", "pwned", 0o644)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			// ".." stops at the root, as in a chroot: evil is /outside
			// in the root.
			if readFile(t, filepath.Join(s.root, "outside/secret")) != "pwned" {
				t.Error("evil/secret did not land in the root")
			}
		},
	}, {
		name: "write through an absolute symlink",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("evil", s.outside), reg("evil/secret", "pwned", 0o644)}
		},
		wantErr: unix.ENOENT, // <root>/<sandbox>/outside does not exist
	}, {
		name: "write through a symlink chain",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("a", "b"), symlinkEnt("b", "c/../../../"+filepath.Base(s.outside)), dirEnt("c/", 0o755), reg("a/secret", "pwned", 0o644)}
		},
		wantErr: unix.ENOENT,
	}, {
		name: "symlink loop",
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("loop", "loop"), reg("loop/f", "x", 0o644)}
		},
		wantErr: unix.ELOOP,
	}, {
		name: "file replaces a symlink to outside",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("evil", filepath.Join(s.outside, "secret")), symlinkEnt("rel", "../outside/passwd"),
				reg("evil", "pwned", 0o644), reg("rel", "pwned", 0o644)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if st := lstat(t, filepath.Join(s.root, "evil")); st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Error("evil is not a regular file")
			}
		},
	}, {
		name: "directory replaces a symlink to outside",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("evil", s.outside), dirEnt("evil/", 0o755), reg("evil/secret", "pwned", 0o644)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if readFile(t, filepath.Join(s.root, "evil/secret")) != "pwned" {
				t.Error("evil/secret is not in the new directory")
			}
		},
	}, {
		name:    "hardlink to outside with dotdot",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{hardlinkEnt("h", "../outside/secret")} },
		wantErr: ErrBreakout,
	}, {
		name:    "hardlink to an absolute outside name",
		layer:   func(s *sandbox) []tarEntry { return []tarEntry{hardlinkEnt("h", filepath.Join(s.outside, "secret"))} },
		wantErr: unix.ENOENT,
	}, {
		name: "hardlink through a symlink to outside",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("evil", s.outside), hardlinkEnt("h", "evil/secret")}
		},
		wantErr: unix.ENOENT,
	}, {
		name: "hardlink to a symlink that points outside, then written",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("s", filepath.Join(s.outside, "secret")), hardlinkEnt("h", "s"), reg("h", "pwned", 0o644), reg("s", "pwned", 0o644)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if readFile(t, filepath.Join(s.root, "h")) != "pwned" {
				t.Error("h was not replaced")
			}
		},
	}, {
		name: "hardlink to a symlink stays a symlink",
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("s", filepath.Join(s.outside, "secret")), hardlinkEnt("h", "s")}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if st := lstat(t, filepath.Join(s.root, "h")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
				t.Errorf("h is not the symlink itself: mode %o", st.Mode)
			}
		},
	}, {
		name:    "hardlink to a directory",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{dirEnt("d/", 0o755), hardlinkEnt("h", "d")} },
		wantErr: unix.EPERM,
	}, {
		name:    "hardlink to the root",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{hardlinkEnt("h", "/")} },
		wantErr: ErrInvalid,
	}, {
		name:    "whiteout with dotdot",
		format:  WhiteoutApply,
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("../outside/.wh.secret", "", 0)} },
		wantErr: ErrBreakout,
	}, {
		name:    "whiteout of dotdot",
		format:  WhiteoutApply,
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("sub/.wh...", "", 0)} },
		wantErr: ErrInvalid,
	}, {
		name:   "whiteout through a lower layer's symlinks",
		format: WhiteoutApply,
		lower: func(t *testing.T, s *sandbox) {
			must(t, os.Symlink(s.outside, filepath.Join(s.root, "abs")))
			must(t, os.Symlink("../outside", filepath.Join(s.root, "rel")))
			must(t, os.Mkdir(filepath.Join(s.root, "outside"), 0o755))
			must(t, os.WriteFile(filepath.Join(s.root, "outside/secret"), nil, 0o644))
		},
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{reg("abs/.wh.secret", "", 0), reg("abs/.wh.sub", "", 0), reg("rel/.wh.secret", "", 0), reg("rel/.wh.sub", "", 0)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if exists(t, filepath.Join(s.root, "outside/secret")) {
				t.Error("rel/.wh.secret did not remove the root's /outside/secret")
			}
		},
	}, {
		name:   "opaque directory through a lower layer's symlink",
		format: WhiteoutApply,
		lower: func(t *testing.T, s *sandbox) {
			must(t, os.Symlink("../../outside", filepath.Join(s.root, "rel")))
			must(t, os.Mkdir(filepath.Join(s.root, "outside"), 0o755))
			must(t, os.WriteFile(filepath.Join(s.root, "outside/lowerfile"), nil, 0o644))
		},
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{reg("outside/mine", "", 0o644), reg("rel/.wh..wh..opq", "", 0)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if exists(t, filepath.Join(s.root, "outside/lowerfile")) || !exists(t, filepath.Join(s.root, "outside/mine")) {
				t.Error("the opaque root did not keep exactly this layer's files")
			}
		},
	}, {
		name:   "opaque directory through an absolute symlink",
		format: WhiteoutOverlay,
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("abs", s.outside), reg("abs/.wh..wh..opq", "", 0), reg("abs/.wh.secret", "", 0)}
		},
		wantErr: unix.ENOENT,
	}, {
		name:   "write through a lower layer's symlink",
		format: WhiteoutApply,
		lower: func(t *testing.T, s *sandbox) {
			must(t, os.Symlink(s.outside, filepath.Join(s.root, "etc")))
		},
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("etc/passwd", "root::0:0::/:/bin/sh", 0o644)} },
		wantErr: unix.ENOENT,
	}, {
		name:   "rewrite a file the lower layer shares with outside",
		format: WhiteoutApply,
		lower: func(t *testing.T, s *sandbox) {
			// A copy made with hardlinks (cp -al) shares inodes with its
			// source: writing into the file would change the source.
			must(t, os.Link(filepath.Join(s.outside, "secret"), filepath.Join(s.root, "shared")))
		},
		layer: func(*sandbox) []tarEntry { return []tarEntry{reg("shared", "pwned", 0o4755)} },
		confined: func(t *testing.T, s *sandbox, _ error) {
			if readFile(t, filepath.Join(s.root, "shared")) != "pwned" {
				t.Error("shared was not rewritten")
			}
		},
	}, {
		name: "device node through a symlink",
		root: true,
		layer: func(s *sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("dev", "../outside"), dirEnt("outside/", 0o755), charEnt("dev/sda", 8, 0), symlinkEnt("abs", s.outside), charEnt("abs/mem", 1, 1)}
		},
		wantErr: unix.ENOENT,
		confined: func(t *testing.T, s *sandbox, _ error) {
			if st := lstat(t, filepath.Join(s.root, "outside/sda")); st.Mode&unix.S_IFMT != unix.S_IFCHR {
				t.Error("dev/sda is not a device node in the root")
			}
		},
	}, {
		name: "setuid file through a symlink",
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{symlinkEnt("bin", "/../../outside"), dirEnt("outside", 0o755), reg("bin/su", "#!", 0o4755)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if st := lstat(t, filepath.Join(s.root, "outside/su")); st.Mode != unix.S_IFREG|0o4755 {
				t.Errorf("su: mode %o", st.Mode)
			}
		},
	}, {
		name:    "name longer than PATH_MAX",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg(long, "x", 0o644)} },
		wantErr: ErrInvalid,
	}, {
		name:    "component longer than NAME_MAX",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg(strings.Repeat("n", 300), "x", 0o644)} },
		wantErr: unix.ENAMETOOLONG,
	}, {
		name:    "file replaces the root",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg(".", "x", 0o644)} },
		wantErr: ErrInvalid,
	}, {
		name:    "symlink replaces the root",
		layer:   func(s *sandbox) []tarEntry { return []tarEntry{symlinkEnt("/", s.outside)} },
		wantErr: ErrInvalid,
	}, {
		name:    "hardlink replaces the root",
		layer:   func(*sandbox) []tarEntry { return []tarEntry{reg("f", "", 0o644), hardlinkEnt(".", "f")} },
		wantErr: ErrInvalid,
	}, {
		name:  "directory entry for the root updates it",
		layer: func(*sandbox) []tarEntry { return []tarEntry{dirEnt("./", 0o751), reg("f", "", 0o644)} },
		confined: func(t *testing.T, s *sandbox, _ error) {
			if st := lstat(t, s.root); st.Mode != unix.S_IFDIR|0o751 || st.Mtim.Sec != testTime.Unix() {
				t.Errorf("root: mode %o mtime %d", st.Mode, st.Mtim.Sec)
			}
		},
	}, {
		name: "uid that chown reads as unchanged",
		layer: func(*sandbox) []tarEntry {
			e := reg("f", "", 0o644)
			e.hdr.Uid = 1<<32 - 1
			return []tarEntry{e}
		},
		wantErr: ErrInvalid,
	}, {
		name: "unknown entry type",
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{{hdr: tar.Header{Typeflag: 'V', Name: "volume", ModTime: testTime}}}
		},
		wantErr: ErrInvalid,
	}, {
		name: "overlay xattrs from the layer are ignored",
		layer: func(*sandbox) []tarEntry {
			d := dirEnt("d/", 0o755)
			d.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.trusted.overlay.opaque": "y"}
			return []tarEntry{d}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if x := xattrSummary(filepath.Join(s.root, "d")); x != "" {
				t.Errorf("d has xattrs %q", x)
			}
		},
	}, {
		name: "aufs metadata is skipped",
		layer: func(*sandbox) []tarEntry {
			return []tarEntry{dirEnt(".wh..wh.plnk/", 0o700), reg(".wh..wh.plnk/1.2", "x", 0o644), reg(".wh..wh.aufs", "", 0)}
		},
		confined: func(t *testing.T, s *sandbox, _ error) {
			if names, _ := os.ReadDir(s.root); len(names) != 0 {
				t.Errorf("the root has %v", names)
			}
		},
	}}
	for _, c := range cases {
		for _, format := range []WhiteoutFormat{WhiteoutOverlay, WhiteoutApply} {
			if c.format != format && c.lower == nil && c.format == WhiteoutApply {
				continue
			}
			if c.lower != nil && format != WhiteoutApply {
				continue
			}
			t.Run(c.name+"/"+format.String(), func(t *testing.T) {
				if c.root {
					requireRoot(t)
				}
				s := newSandbox(t)
				if c.lower != nil {
					c.lower(t, s)
				}
				s.seal(t)
				_, err := apply(t, s.root, mkTar(t, c.layer(s)...), applyOpts(format))
				switch {
				case c.wantErr == nil && err != nil:
					t.Errorf("Apply: %v", err)
				case c.wantErr == errAny && err == nil, c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
					t.Errorf("Apply: %v, want %v", err, c.wantErr)
				}
				if err != nil {
					var ee *EntryError
					if !errors.As(err, &ee) || ee.Name == "" {
						t.Errorf("error %v does not name an entry", err)
					}
				}
				s.check(t)
				if c.confined != nil {
					c.confined(t, s, err)
				}
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
