package runtime

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/linux/cgroups"
	"github.com/berth-project/berth/internal/linux/cgroups/systemd"
	"github.com/berth-project/berth/internal/linux/rootfs"
)

// cgroups returns the manager of the container's cgroups as created.
func (c *Container) cgroups() (cgroups.Manager, error) {
	if len(c.st.CgroupPaths) == 0 {
		return nil, fmt.Errorf("container %s has no cgroups", c.st.ID)
	}
	return systemd.Load(c.st.SystemdUnit, c.st.CgroupPaths), nil
}

// cgroupView describes the host's hierarchies as the container's cgroup
// mount shows them.
func cgroupView(mgr cgroups.Manager) (rootfs.CgroupView, error) {
	layout, err := cgroups.Detect()
	if err != nil {
		return rootfs.CgroupView{}, err
	}
	paths := mgr.Paths()
	var v rootfs.CgroupView
	for _, h := range layout.Hierarchies {
		ch := rootfs.CgroupHierarchy{Unified: h.Unified}
		if h.Unified {
			ch.HostPath = paths[""]
			if layout.Mode != cgroups.Unified {
				ch.Name = "unified"
			}
		} else {
			if len(h.Controllers) == 0 {
				continue
			}
			ch.Name = filepath.Base(h.Mountpoint)
			ch.Options = strings.Join(h.Controllers, ",")
			if strings.HasPrefix(h.Controllers[0], "name=") {
				ch.Name = strings.TrimPrefix(h.Controllers[0], "name=")
				ch.Options = "none," + ch.Options
			}
			ch.HostPath = paths[h.Controllers[0]]
		}
		v.Hierarchies = append(v.Hierarchies, ch)
	}
	return v, nil
}
