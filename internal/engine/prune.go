package engine

import (
	"context"
	"errors"
	"github.com/berth-project/berth/internal/errdefs"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Prune removes every stopped container (created, exited, dead) that
// matches docker's prune filters (until, label, label!), as docker's
// POST /containers/prune, and reports the IDs and the bytes of their
// writable layers.
func (e *Engine) Prune(ctx context.Context, filters map[string][]string) (*container.PruneReport, error) {
	var tests []func(snapshotOf) bool
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "until":
			var until time.Time
			for _, v := range values {
				t, err := parseTimestamp(v, time.Now())
				if err != nil {
					return nil, invalidf("invalid filter 'until=%s': %v", v, err)
				}
				until = t
			}
			tests = append(tests, func(s snapshotOf) bool { return s.rec.Created.Before(until) })
		case "label":
			tests = append(tests, func(s snapshotOf) bool { return allLabels(values, s.rec.Config.Labels) })
		case "label!":
			tests = append(tests, func(s snapshotOf) bool {
				for _, v := range values {
					if allLabels([]string{v}, s.rec.Config.Labels) {
						return false
					}
				}
				return true
			})
		default:
			return nil, invalidf("invalid filter '%s'", key)
		}
	}
	report := &container.PruneReport{ContainersDeleted: []string{}}
	var errs []error
	for _, s := range e.all() {
		switch s.state.Status {
		case container.StateCreated, container.StateExited, container.StateDead:
		default:
			continue
		}
		ok := true
		for _, t := range tests {
			ok = ok && t(s)
		}
		if !ok {
			continue
		}
		s.c.mu.Lock()
		rw, _ := e.sizes(ctx, s.c)
		s.c.mu.Unlock()
		if err := e.Remove(ctx, s.rec.ID, RemoveOptions{}); err != nil {
			if !errors.Is(err, errdefs.ErrNotModified) {
				errs = append(errs, err)
			}
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, s.rec.ID)
		report.SpaceReclaimed += uint64(rw)
	}
	if e.cfg.Events != nil {
		now := time.Now()
		e.cfg.Events(events.Message{
			Type:     events.ContainerEventType,
			Action:   events.ActionPrune,
			Actor:    events.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)}},
			Scope:    "local",
			Time:     now.Unix(),
			TimeNano: now.UnixNano(),
		})
	}
	return report, errors.Join(errs...)
}

// parseTimestamp reads docker's time filter values: a Go duration back
// from now ("10m"), Unix seconds ("1700000000", "1700000000.5"), or an
// RFC 3339 date or time.
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			var ns int64
			if ok {
				f := (frac + "000000000")[:9]
				if n, err := strconv.ParseInt(f, 10, 64); err == nil {
					ns = n
				} else {
					return time.Time{}, err
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a duration, Unix time or RFC 3339 time")
}
