package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/berth-project/berth/internal/archive"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

// VolumeCreate creates a volume, as docker's POST /volumes/create.
func (e *Engine) VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error) {
	existed := req.Name != "" && e.volumes.Exists(req.Name)
	v, err := e.volumes.Create(ctx, req)
	if err != nil {
		return nil, err
	}
	if !existed {
		e.emitVolume(events.ActionCreate, v.Name, nil)
	}
	return v, nil
}

// VolumeInspect describes a volume, as docker's GET /volumes/{name}.
func (e *Engine) VolumeInspect(ctx context.Context, name string) (*volume.Volume, error) {
	return e.volumes.Get(ctx, name)
}

// VolumeList lists volumes, as docker's GET /volumes.
func (e *Engine) VolumeList(ctx context.Context, filters map[string][]string) (*volume.ListResponse, error) {
	vs, err := e.volumes.List(ctx, filters)
	if err != nil {
		return nil, err
	}
	resp := &volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range vs {
		resp.Volumes = append(resp.Volumes, *v)
	}
	return resp, nil
}

// VolumeRemove removes a volume, as docker's DELETE /volumes/{name}: a
// volume a container uses is refused ("volume is in use").
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	existed := e.volumes.Exists(name)
	if err := e.volumes.Remove(ctx, name, force); err != nil {
		return err
	}
	if existed {
		e.emitVolume(events.ActionDestroy, name, nil)
	}
	return nil
}

// VolumePrune removes unused volumes, as docker's POST /volumes/prune:
// anonymous ones unless the filter all=true.
func (e *Engine) VolumePrune(ctx context.Context, filters map[string][]string) (*volume.PruneReport, error) {
	rep, err := e.volumes.Prune(ctx, filters)
	if rep != nil {
		for _, name := range rep.VolumesDeleted {
			e.emitVolume(events.ActionDestroy, name, nil)
		}
		if rep.VolumesDeleted == nil {
			rep.VolumesDeleted = []string{}
		}
	}
	return rep, err
}

// copyUp fills an empty volume directory with what the image has at dest,
// as docker does the first time a volume is mounted over image content:
// files, owners, modes, xattrs, and the directory's own owner and mode.
// dest is resolved inside the container's root; the copy is a tar stream
// from archive.Tar into archive.Apply, which follow nothing out of either
// tree.
func copyUp(ctx context.Context, rootfs, dest, volumeDir string) error {
	empty, err := dirEmpty(volumeDir)
	if err != nil || !empty {
		return err
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	rel := strings.TrimPrefix(path.Clean("/"+dest), "/")
	fd, err := openat2(int(root.Fd()), rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing in the image there
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: dest, Err: err}
	}
	src := os.NewFile(uintptr(fd), dest)
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Tar(ctx, fdPath(src), pw, archive.TarOptions{})) }()
	_, err = archive.Apply(ctx, volumeDir, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	pr.Close()
	if err != nil {
		return err
	}
	if err := os.Lchown(volumeDir, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(volumeDir, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: volumeDir, Err: err}
	}
	return nil
}

// dirEmpty tells whether a directory has no entries.
func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("open volume %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}
