package docker

import (
	"context"
	"io/fs"
	"path/filepath"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/engine"
)

// containerUsage is the container part of GET /system/df: every
// container with the size of its writable layer; the layers of stopped
// ones are reclaimable.
func (s *Server) containerUsage(ctx context.Context) ([]container.Summary, *container.DiskUsage, error) {
	list, err := s.containers.List(ctx, engine.ListOptions{All: true, Size: true})
	if err != nil {
		return nil, nil, err
	}
	du := &container.DiskUsage{TotalCount: int64(len(list))}
	for _, c := range list {
		du.TotalSize += c.SizeRw
		if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
			du.ActiveCount++
		} else {
			du.Reclaimable += c.SizeRw
		}
	}
	return list, du, nil
}

// volumeUsage is the volume part of GET /system/df: each volume with the
// number of containers that mount it and the bytes under its mount point
// (a walk that follows no symlink); unused volumes are reclaimable.
func (s *Server) volumeUsage(ctx context.Context, ctrs []container.Summary) ([]volume.Volume, *volume.DiskUsage, error) {
	resp, err := s.containers.VolumeList(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	refs := map[string]int64{}
	for _, c := range ctrs {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name != "" {
				refs[m.Name]++
			}
		}
	}
	du := &volume.DiskUsage{TotalCount: int64(len(resp.Volumes))}
	vols := make([]volume.Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		size := dirSize(v.Mountpoint)
		v.UsageData = &volume.UsageData{RefCount: refs[v.Name], Size: size}
		du.TotalSize += max(size, 0)
		if refs[v.Name] > 0 {
			du.ActiveCount++
		} else {
			du.Reclaimable += max(size, 0)
		}
		vols = append(vols, v)
	}
	return vols, du, nil
}

// dirSize adds up the sizes of the regular files under dir; -1 when dir
// cannot be read (docker's "not available").
func dirSize(dir string) int64 {
	if dir == "" {
		return -1
	}
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}
