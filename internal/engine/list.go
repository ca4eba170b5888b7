package engine

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// ListOptions are docker's GET /containers/json parameters.
type ListOptions struct {
	// All lists stopped containers too; by default only running ones.
	All bool
	// Limit lists the Limit most recently created containers, of any
	// state (docker's -n; Latest is Limit 1).
	Limit int
	// Size computes SizeRw and SizeRootFs.
	Size bool
	// Filters are docker's: ancestor, before, exited, health, id, label,
	// name, network, since, status, volume, is-task.
	Filters map[string][]string
}

// snapshotOf is what List and Prune need of a container, read once
// under its lock.
type snapshotOf struct {
	c       *ctr
	rec     record
	state   *container.State
	mounts  []container.MountPoint
	network *container.NetworkSettings
}

// all returns every container, newest first, with its state read under
// its lock (never with e.mu held: see the lock order in doc.go).
func (e *Engine) all() []snapshotOf {
	e.mu.RLock()
	ctrs := slices.Collect(maps.Values(e.ctrs))
	e.mu.RUnlock()
	out := make([]snapshotOf, 0, len(ctrs))
	for _, c := range ctrs {
		c.mu.Lock()
		if !c.removed {
			out = append(out, snapshotOf{c: c, rec: *c.rec, state: c.dockerState(), mounts: c.dockerMounts(), network: e.networkSettings(c)})
		}
		c.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b snapshotOf) int {
		if d := b.rec.Created.Compare(a.rec.Created); d != 0 {
			return d
		}
		return strings.Compare(a.rec.ID, b.rec.ID)
	})
	return out
}

// List lists containers as docker's GET /containers/json.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	snaps := e.all()
	match, all, err := e.listFilter(ctx, opts.Filters, snaps)
	if err != nil {
		return nil, err
	}
	all = all || opts.All || opts.Limit > 0
	out := []container.Summary{}
	for _, s := range snaps {
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
		if !all && !s.state.Running {
			continue
		}
		if !match(s) {
			continue
		}
		out = append(out, e.summary(ctx, s, opts.Size))
	}
	return out, nil
}

// summary is one row of docker ps.
func (e *Engine) summary(ctx context.Context, s snapshotOf, size bool) container.Summary {
	rec := s.rec
	sum := container.Summary{
		ID:                      rec.ID,
		Names:                   []string{rec.Name},
		Image:                   rec.Config.Image,
		ImageID:                 rec.ImageID,
		ImageManifestDescriptor: rec.ImageManifest,
		Command:                 strings.Join(append([]string{rec.Path}, rec.Args...), " "),
		Created:                 rec.Created.Unix(),
		Ports:                   []container.PortSummary{},
		Labels:                  maps.Clone(rec.Config.Labels),
		State:                   s.state.Status,
		Status:                  statusText(s.state, rec),
		Mounts:                  s.mounts,
		NetworkSettings:         &container.NetworkSettingsSummary{Networks: s.network.Networks},
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
	sum.HostConfig.Annotations = maps.Clone(rec.HostConfig.Annotations)
	sum.Ports = portSummaries(s.network.Ports)
	if h := s.state.Health; h != nil {
		sum.Health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	if size {
		s.c.mu.Lock()
		rw, rootfs := e.sizes(ctx, s.c)
		s.c.mu.Unlock()
		sum.SizeRw, sum.SizeRootFs = rw, rootfs
	}
	return sum
}

// statusText is docker ps's STATUS column.
func statusText(st *container.State, rec record) string {
	since := func(t string) string {
		tt, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return ""
		}
		return units.HumanDuration(time.Since(tt))
	}
	switch st.Status {
	case container.StateRunning, container.StatePaused:
		s := "Up " + since(st.StartedAt)
		if st.Paused {
			s += " (Paused)"
		}
		if h := st.Health; h != nil {
			switch h.Status {
			case container.Starting:
				s += " (health: starting)"
			case container.Healthy, container.Unhealthy:
				s += " (" + string(h.Status) + ")"
			}
		}
		return s
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, since(st.FinishedAt))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	case container.StateCreated:
		return "Created"
	}
	if rec.State.FinishedAt.IsZero() {
		return "Exited"
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, since(st.FinishedAt))
}

// listFilter builds the matcher of docker's ps filters; all tells
// whether the filters select stopped containers (status, exited).
func (e *Engine) listFilter(ctx context.Context, filters map[string][]string, snaps []snapshotOf) (func(snapshotOf) bool, bool, error) {
	var tests []func(snapshotOf) bool
	all := false
	created := func(ref string) (time.Time, error) {
		for _, s := range snaps {
			if s.rec.ID == ref || s.rec.Name == "/"+strings.TrimPrefix(ref, "/") {
				return s.rec.Created, nil
			}
		}
		c, err := e.lookup(ref)
		if err != nil {
			return time.Time{}, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.rec.Created, nil
	}
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "status":
			for _, v := range values {
				if container.ValidateContainerState(container.ContainerState(v)) != nil {
					return nil, false, invalidf("invalid filter 'status=%s'", v)
				}
			}
			all = true
			tests = append(tests, func(s snapshotOf) bool { return slices.Contains(values, string(s.state.Status)) })
		case "exited":
			var codes []int
			for _, v := range values {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, false, invalidf("invalid filter 'exited=%s'", v)
				}
				codes = append(codes, n)
			}
			all = true
			tests = append(tests, func(s snapshotOf) bool {
				return s.state.Status == container.StateExited && slices.Contains(codes, s.state.ExitCode)
			})
		case "id":
			tests = append(tests, func(s snapshotOf) bool { return anyRegexp(values, s.rec.ID) })
		case "name":
			tests = append(tests, func(s snapshotOf) bool {
				return anyRegexp(values, strings.TrimPrefix(s.rec.Name, "/")) || anyRegexp(values, s.rec.Name)
			})
		case "label":
			tests = append(tests, func(s snapshotOf) bool { return allLabels(values, s.rec.Config.Labels) })
		case "ancestor":
			var ids []string
			for _, v := range values {
				if img, err := e.images.Get(ctx, v); err == nil {
					ids = append(ids, img.ID.String())
				}
			}
			tests = append(tests, func(s snapshotOf) bool {
				return slices.Contains(ids, s.rec.ImageID) || slices.Contains(values, s.rec.Config.Image)
			})
		case "before", "since":
			var bound time.Time
			for _, v := range values {
				t, err := created(v)
				if err != nil {
					return nil, false, err
				}
				bound = t
			}
			before := key == "before"
			tests = append(tests, func(s snapshotOf) bool {
				if before {
					return s.rec.Created.Before(bound)
				}
				return s.rec.Created.After(bound)
			})
		case "health":
			for _, v := range values {
				if container.ValidateHealthStatus(container.HealthStatus(v)) != nil {
					return nil, false, invalidf("invalid filter 'health=%s'", v)
				}
			}
			tests = append(tests, func(s snapshotOf) bool {
				status := container.NoHealthcheck
				if s.state.Health != nil {
					status = s.state.Health.Status
				}
				return slices.Contains(values, string(status))
			})
		case "volume":
			tests = append(tests, func(s snapshotOf) bool {
				for _, m := range s.mounts {
					if (m.Type == mount.TypeVolume && slices.Contains(values, m.Name)) || slices.Contains(values, m.Destination) {
						return true
					}
				}
				return false
			})
		case "network":
			tests = append(tests, func(s snapshotOf) bool {
				for n := range s.network.Networks {
					if slices.Contains(values, n) {
						return true
					}
				}
				return false
			})
		case "is-task":
			tests = append(tests, func(s snapshotOf) bool { return slices.Contains(values, "false") })
		case "expose", "publish":
			tests = append(tests, func(s snapshotOf) bool {
				for p := range s.rec.Config.ExposedPorts {
					if slices.Contains(values, p.String()) || slices.Contains(values, p.Port()) {
						return key == "expose"
					}
				}
				return false
			})
		default:
			return nil, false, invalidf("invalid filter '%s'", key)
		}
	}
	return func(s snapshotOf) bool {
		for _, t := range tests {
			if !t(s) {
				return false
			}
		}
		return true
	}, all, nil
}

// anyRegexp is docker's filters.Match: each value a regular expression
// searched in s; a value that does not compile is compared literally.
func anyRegexp(values []string, s string) bool {
	for _, v := range values {
		if re, err := regexp.Compile(v); err == nil {
			if re.MatchString(s) {
				return true
			}
		} else if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// allLabels reports whether labels has every "key" or "key=value".
func allLabels(values []string, labels map[string]string) bool {
	for _, v := range values {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != want {
			return false
		}
	}
	return true
}
