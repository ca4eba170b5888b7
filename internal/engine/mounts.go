package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
)

// mountPlan collects a container's mounts at create: binds, volumes
// (named ones made on demand, anonymous ones for the image's VOLUMEs and
// bare -v /path) and tmpfs mounts, each destination once.
type mountPlan struct {
	e      *Engine
	id     string
	points []mountPoint
	dests  map[string]bool
	// created are the volumes this plan made, removed again if the
	// create fails; acquired are the references it took.
	created  []string
	acquired []string
}

// rollback undoes what the plan did to the volume store.
func (p *mountPlan) rollback() {
	for _, name := range p.acquired {
		p.e.volumes.Release(name, p.id)
	}
	for _, name := range p.created {
		p.e.volumes.Remove(context.Background(), name, true)
	}
}

// cleanDest checks a container path and returns it cleaned.
func cleanDest(kind mount.Type, dest string) (string, error) {
	if dest == "" {
		return "", invalidf("invalid mount config for type %q: field Target must not be empty", kind)
	}
	if !path.IsAbs(dest) || strings.ContainsRune(dest, 0) {
		return "", invalidf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", kind, dest)
	}
	d := path.Clean(dest)
	if d == "/" {
		return "", invalidf("invalid specification: destination can't be '/'")
	}
	return d, nil
}

func (p *mountPlan) claim(dest string) error {
	if p.dests[dest] {
		return invalidf("Duplicate mount point: %s", dest)
	}
	p.dests[dest] = true
	return nil
}

// bindModes are the modes -v takes; propagation applies to binds only,
// nocopy to volumes only; z and Z (SELinux relabelling) and the
// consistency words are accepted and have no effect here.
type bindMode struct {
	rw          bool
	roSet       bool
	propagation mount.Propagation
	nocopy      bool
}

func parseMode(spec, mode string, isBind bool) (bindMode, error) {
	m := bindMode{rw: true}
	if mode == "" {
		return m, nil
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(mode, ",") {
		key := o
		switch o {
		case "rw", "ro":
			key = "rw"
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			key = "propagation"
		case "z", "Z":
			key = "label"
		case "cached", "delegated", "consistent":
			key = "consistency"
		}
		if seen[key] {
			return m, invalidf("invalid mode: %s", mode)
		}
		seen[key] = true
		switch o {
		case "rw":
		case "ro":
			m.rw, m.roSet = false, true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			if !isBind {
				return m, invalidf("invalid mode: %s", mode)
			}
			m.propagation = mount.Propagation(o)
		case "nocopy":
			if isBind {
				return m, invalidf("invalid mode: %s", mode)
			}
			m.nocopy = true
		case "z", "Z", "cached", "delegated", "consistent":
		default:
			return m, invalidf("invalid mode: %s", mode)
		}
	}
	return m, nil
}

// addBind adds one HostConfig.Binds entry: [source:]destination[:mode],
// a host path (absolute) or a volume name (anything else) as source.
func (p *mountPlan) addBind(ctx context.Context, spec string) error {
	parts := strings.Split(spec, ":")
	var src, dest, mode string
	switch len(parts) {
	case 1:
		dest = parts[0]
	case 2:
		if validModeWord(parts[1]) {
			dest, mode = parts[0], parts[1]
		} else {
			src, dest = parts[0], parts[1]
		}
	case 3:
		src, dest, mode = parts[0], parts[1], parts[2]
	default:
		return invalidf("invalid spec: %s: too many colons", spec)
	}
	isBind := path.IsAbs(src)
	kind := mount.TypeVolume
	if isBind {
		kind = mount.TypeBind
	}
	d, err := cleanDest(kind, dest)
	if err != nil {
		return err
	}
	m, err := parseMode(spec, mode, isBind)
	if err != nil {
		return err
	}
	if err := p.claim(d); err != nil {
		return err
	}
	if isBind {
		// -v creates a missing host directory, as docker always has
		// (--mount refuses it).
		src = path.Clean(src)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("create bind source %s: %w", src, err)
			}
		} else if err != nil {
			return invalidf("invalid bind source %s: %v", src, err)
		}
		prop := m.propagation
		if prop == "" {
			prop = mount.PropagationRPrivate
		}
		p.points = append(p.points, mountPoint{MountPoint: container.MountPoint{
			Type: mount.TypeBind, Source: src, Destination: d, Mode: mode, RW: m.rw, Propagation: prop,
		}})
		return nil
	}
	if mode == "" {
		mode = "z"
	}
	return p.addVolume(ctx, src, d, mode, m.rw, !m.nocopy, nil, nil)
}

// validModeWord tells whether every comma-separated word of s is a mode,
// to read "dest:ro" as a destination and mode rather than a source and
// destination.
func validModeWord(s string) bool {
	for _, o := range strings.Split(s, ",") {
		switch o {
		case "rw", "ro", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave", "cached", "delegated", "consistent":
		default:
			return false
		}
	}
	return true
}

// addVolume adds a volume mount; an empty name makes an anonymous volume.
func (p *mountPlan) addVolume(ctx context.Context, name, dest, mode string, rw, copyData bool, labels map[string]string, driver *mount.Driver) error {
	anonymous := name == ""
	if !anonymous && !p.e.volumes.Exists(name) || anonymous {
		req := volume.CreateRequest{Name: name, Labels: labels}
		if driver != nil {
			req.Driver, req.DriverOpts = driver.Name, driver.Options
		}
		v, err := p.e.volumes.Create(ctx, req)
		if err != nil {
			return err
		}
		name = v.Name
		p.created = append(p.created, name)
		p.e.emitVolume(events.ActionCreate, name, nil)
	}
	if err := p.e.volumes.Acquire(name, p.id); err != nil {
		return err
	}
	p.acquired = append(p.acquired, name)
	p.points = append(p.points, mountPoint{
		MountPoint: container.MountPoint{
			Type: mount.TypeVolume, Name: name, Source: p.e.volumes.Path(name), Destination: dest,
			Driver: "local", Mode: mode, RW: rw,
		},
		CopyData:  copyData,
		Anonymous: anonymous || p.e.volumes.Anonymous(name),
	})
	return nil
}

// addMount adds one HostConfig.Mounts entry (--mount).
func (p *mountPlan) addMount(ctx context.Context, m mount.Mount, tmpfs map[string]string) error {
	d, err := cleanDest(m.Type, m.Target)
	if err != nil {
		return err
	}
	switch m.Type {
	case mount.TypeBind:
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return invalidf("invalid mount config for type \"bind\": only BindOptions apply to a bind mount")
		}
		if !path.IsAbs(m.Source) {
			return invalidf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		src := path.Clean(m.Source)
		bo := m.BindOptions
		if bo == nil {
			bo = &mount.BindOptions{}
		}
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			if !bo.CreateMountpoint {
				return invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", src)
			}
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("create bind source %s: %w", src, err)
			}
		} else if err != nil {
			return invalidf("invalid mount config for type \"bind\": %v", err)
		}
		prop := bo.Propagation
		if prop == "" {
			prop = mount.PropagationRPrivate
		}
		if !slices.Contains(mount.Propagations, prop) {
			return invalidf("invalid mount config for type \"bind\": invalid propagation %q", prop)
		}
		if err := p.claim(d); err != nil {
			return err
		}
		p.points = append(p.points, mountPoint{
			MountPoint:   container.MountPoint{Type: mount.TypeBind, Source: src, Destination: d, RW: !m.ReadOnly, Propagation: prop},
			NonRecursive: bo.NonRecursive,
		})
		return nil
	case mount.TypeVolume:
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return invalidf("invalid mount config for type \"volume\": only VolumeOptions apply to a volume mount")
		}
		vo := m.VolumeOptions
		if vo == nil {
			vo = &mount.VolumeOptions{}
		}
		if vo.Subpath != "" {
			return invalidf("invalid mount config for type \"volume\": volume subpaths are not supported")
		}
		if err := p.claim(d); err != nil {
			return err
		}
		return p.addVolume(ctx, m.Source, d, "z", !m.ReadOnly, !vo.NoCopy, vo.Labels, vo.DriverConfig)
	case mount.TypeTmpfs:
		if m.Source != "" {
			return invalidf("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
		if m.BindOptions != nil || m.VolumeOptions != nil {
			return invalidf("invalid mount config for type \"tmpfs\": only TmpfsOptions apply to a tmpfs mount")
		}
		opts, err := tmpfsOptions(m)
		if err != nil {
			return err
		}
		if err := p.claim(d); err != nil {
			return err
		}
		p.points = append(p.points, mountPoint{
			MountPoint:   container.MountPoint{Type: mount.TypeTmpfs, Destination: d, RW: !m.ReadOnly},
			TmpfsOptions: opts,
		})
		return nil
	case "":
		return invalidf("invalid mount config: mount type unknown")
	}
	return invalidf("invalid mount config for type %q: mount type not supported", m.Type)
}

// tmpfsOptions turns --mount type=tmpfs options into tmpfs mount options.
func tmpfsOptions(m mount.Mount) (string, error) {
	var opts []string
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if o := m.TmpfsOptions; o != nil {
		if o.SizeBytes < 0 {
			return "", invalidf("invalid mount config for type \"tmpfs\": invalid size %d", o.SizeBytes)
		}
		if o.SizeBytes > 0 {
			opts = append(opts, "size="+strconv.FormatInt(o.SizeBytes, 10))
		}
		if o.Mode != 0 {
			opts = append(opts, "mode="+strconv.FormatUint(uint64(o.Mode.Perm()), 8))
		}
		for _, kv := range o.Options {
			switch len(kv) {
			case 1:
				opts = append(opts, kv[0])
			case 2:
				opts = append(opts, kv[0]+"="+kv[1])
			default:
				return "", invalidf("invalid mount config for type \"tmpfs\": invalid option %q", kv)
			}
		}
	}
	return strings.Join(opts, ","), nil
}

// addVolumesFrom copies another container's volume and bind mounts
// (--volumes-from ID[:ro|rw]).
func (p *mountPlan) addVolumesFrom(spec string) error {
	ref, mode, _ := strings.Cut(spec, ":")
	switch mode {
	case "", "rw", "ro":
	default:
		return invalidf("invalid mode for volumes-from: %s", mode)
	}
	src, err := p.e.lookup(ref)
	if err != nil {
		return err
	}
	src.mu.Lock()
	points := slices.Clone(src.rec.Mounts)
	src.mu.Unlock()
	for _, mp := range points {
		if mp.Type == mount.TypeTmpfs || p.dests[mp.Destination] {
			continue
		}
		p.dests[mp.Destination] = true
		mp.CopyData = false
		mp.Anonymous = false // belongs to the other container
		switch mode {
		case "ro":
			mp.RW = false
		case "rw":
			mp.RW = true
		}
		if mp.Type == mount.TypeVolume {
			if err := p.e.volumes.Acquire(mp.Name, p.id); err != nil {
				return err
			}
			p.acquired = append(p.acquired, mp.Name)
		}
		p.points = append(p.points, mp)
	}
	return nil
}
