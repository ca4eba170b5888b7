package snapshot

import "context"

// copyDriver keeps every snapshot as a complete tree: a child starts as a
// copy of its parent and the layer is applied onto it, whiteouts carried
// out. Works on any file system that keeps owners and xattrs; costs a copy
// per layer and per container.
type copyDriver struct{}

func (copyDriver) name() string { return "copy" }

func (copyDriver) caps() Caps { return Caps{} }

func (copyDriver) populate(ctx context.Context, dir, parentFS string, kind Kind, extraction bool) error {
	// A View is its parent's tree, bound read-only: nothing to copy.
	if parentFS == "" || kind == View {
		return nil
	}
	return copyTree(ctx, fsDir(dir), parentFS)
}

func (copyDriver) mounts(kind Kind, dir string, lowers []string) []Mount {
	if kind == View {
		src := fsDir(dir)
		if len(lowers) > 0 {
			src = lowers[0]
		}
		return []Mount{bindMount(src, true)}
	}
	return []Mount{bindMount(fsDir(dir), false)}
}

func bindMount(src string, ro bool) Mount {
	opt := "rw"
	if ro {
		opt = "ro"
	}
	return Mount{Type: "bind", Source: src, Options: []string{"rbind", opt}}
}
