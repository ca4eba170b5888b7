package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// MountAll applies mounts, in order, on target. On failure the ones already
// made are undone.
//
// Overlay options longer than a page: mount(2) copies at most one page of
// options and silently drops the rest, so a deep chain of absolute lowerdir
// paths (150 layers of /var/lib/berth/image/snapshots/snapshots/NNN/fs is
// ~7 KiB) cannot be passed as is. Worse than failing, the cut list still
// mounts: on Linux 6.18 a list cut inside "/dev/shm/..." mounted the host's
// /dev as the bottom layer. Options of a page or more are therefore never
// handed to mount(2) as they are.
//
// For overlay, MountAll then changes, on a thread of its own, to the
// directory the layers share and passes them relative to it: "12/fs:11/fs"
// costs 6 to 9 bytes a layer, room for some 450 layers (overlayfs stacks at
// most 500). This works on every kernel berth supports. The alternative,
// fsconfig's "lowerdir+" key (one layer per call), exists only from Linux
// 6.8, and plain fsconfig string values are capped at 256 bytes, so on 6.1
// the new mount API does not help. The Mount values stay absolute, so they
// still convert to runtime-spec mounts where the chain fits a page.
//
// target must be a directory the caller controls: mount(2) follows
// symlinks in it.
func MountAll(mounts []Mount, target string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for range i {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts everything stacked on target; a target with nothing
// mounted is not an error, so cleanups can call it freely. A busy mount is
// detached (MNT_DETACH) and goes once its last user does.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EINVAL):
			return nil // not (any longer) a mount point
		}
		return &os.PathError{Op: "unmount", Path: target, Err: err}
	}
}

// mountFlags are the options that are flags of mount(2) rather than file
// system data: the value is set (true) or cleared (false).
var mountFlags = map[string]struct {
	flag  uintptr
	clear bool
}{
	"ro":       {unix.MS_RDONLY, false},
	"rw":       {unix.MS_RDONLY, true},
	"bind":     {unix.MS_BIND, false},
	"rbind":    {unix.MS_BIND | unix.MS_REC, false},
	"nosuid":   {unix.MS_NOSUID, false},
	"suid":     {unix.MS_NOSUID, true},
	"nodev":    {unix.MS_NODEV, false},
	"dev":      {unix.MS_NODEV, true},
	"noexec":   {unix.MS_NOEXEC, false},
	"exec":     {unix.MS_NOEXEC, true},
	"noatime":  {unix.MS_NOATIME, false},
	"relatime": {unix.MS_RELATIME, false},
}

func parseOptions(opts []string) (uintptr, []string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		f, ok := mountFlags[o]
		switch {
		case !ok:
			data = append(data, o)
		case f.clear:
			flags &^= f.flag
		default:
			flags |= f.flag
		}
	}
	return flags, data
}

func mountOne(m Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if m.Type == "bind" || flags&unix.MS_BIND != 0 {
		return bind(m.Source, target, flags)
	}
	opts := strings.Join(data, ",")
	if len(opts) >= unix.Getpagesize() {
		if m.Type == "overlay" {
			return mountOverlayRelative(target, flags, data)
		}
		return fmt.Errorf("mount %s on %s: %d bytes of options, over the kernel's %d", m.Type, target, len(opts), unix.Getpagesize())
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, opts); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, os.NewSyscallError("mount", err))
	}
	return nil
}

// bind makes a bind mount; the flags other than MS_BIND|MS_REC (read-only,
// nosuid...) only take effect on a remount of the bind.
func bind(source, target string, flags uintptr) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND|flags&unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, target, os.NewSyscallError("mount", err))
	}
	if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s with flags %#x: %w", target, rest, os.NewSyscallError("mount", err))
		}
	}
	return nil
}

// mountOverlayRelative mounts an overlay whose options do not fit a page,
// with its directories relative to the deepest directory they share. The
// working directory is per process, so this runs on a locked thread that
// first unshares its file system context (CLONE_FS) and is never handed
// back to Go's scheduler: it exits with the goroutine.
func mountOverlayRelative(target string, flags uintptr, data []string) error {
	base, rel, layers, err := relativeOverlayOptions(data)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	if len(rel) >= unix.Getpagesize() {
		return fmt.Errorf("mount overlay on %s: %d layers need %d bytes of options even relative to %s, over the kernel's %d", target, layers, len(rel), base, unix.Getpagesize())
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- os.NewSyscallError("unshare CLONE_FS", err)
			return
		}
		if err := unix.Chdir(base); err != nil {
			errc <- &os.PathError{Op: "chdir", Path: base, Err: err}
			return
		}
		errc <- os.NewSyscallError("mount", unix.Mount("overlay", target, "overlay", flags, rel))
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("mount overlay of %d layers on %s (relative to %s): %w", layers, target, base, err)
	}
	return nil
}

// relativeOverlayOptions rewrites the lowerdir, upperdir and workdir of
// overlay options relative to the deepest directory they all sit in.
func relativeOverlayOptions(data []string) (base, opts string, layers int, err error) {
	var paths []string
	for _, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			ls := strings.Split(v, ":")
			layers = len(ls)
			paths = append(paths, ls...)
		case "upperdir", "workdir":
			paths = append(paths, v)
		}
	}
	if len(paths) == 0 {
		return "", "", 0, errors.New("no lowerdir")
	}
	base = filepath.Dir(paths[0])
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return "", "", 0, fmt.Errorf("overlay directory %q is not absolute", p)
		}
		for base != "/" && !strings.HasPrefix(p, base+"/") {
			base = filepath.Dir(base)
		}
	}
	rel := func(p string) string {
		if base == "/" {
			return p[1:]
		}
		return p[len(base)+1:]
	}
	out := make([]string, 0, len(data))
	for _, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			ls := strings.Split(v, ":")
			for i := range ls {
				ls[i] = rel(ls[i])
			}
			o = k + "=" + strings.Join(ls, ":")
		case "upperdir", "workdir":
			o = k + "=" + rel(v)
		}
		out = append(out, o)
	}
	return base, strings.Join(out, ","), layers, nil
}
