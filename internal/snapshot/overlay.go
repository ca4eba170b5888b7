package snapshot

import (
	"context"
	"os"
	"strings"
)

// overlayDriver keeps each snapshot's own diff and mounts chains as
// overlayfs.
type overlayDriver struct{}

func (overlayDriver) name() string { return "overlay" }

func (overlayDriver) caps() Caps { return Caps{ParallelExtract: true, OverlayWhiteouts: true} }

func (overlayDriver) populate(ctx context.Context, dir, parentFS string, kind Kind, extraction bool) error {
	// A writable snapshot over a parent is an overlay upper, which needs a
	// work directory on the same file system.
	if kind == Active && !extraction && parentFS != "" {
		return os.Mkdir(workDir(dir), 0o700)
	}
	return nil
}

// mounts: a single directory is bound; a stack is an overlay. A View
// without upper is read-only by construction (overlayfs without upperdir
// cannot be written), yet says ro as well for whoever converts it to a
// runtime-spec mount.
func (overlayDriver) mounts(kind Kind, dir string, lowers []string) []Mount {
	switch {
	case kind == View && len(lowers) == 0:
		return []Mount{bindMount(fsDir(dir), true)}
	case kind == View && len(lowers) == 1:
		return []Mount{bindMount(lowers[0], true)}
	case kind == View:
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":"), "index=off"}}}
	case len(lowers) == 0:
		return []Mount{bindMount(fsDir(dir), false)}
	}
	// index=off: with the index on (a kernel build option), overlayfs ties
	// lower directories to the upper they were first used with and refuses
	// or warns when layers are shared between containers.
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + fsDir(dir),
		"workdir=" + workDir(dir),
		"index=off",
	}}}
}
