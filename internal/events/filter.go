package events

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/events"
)

// Filter selects events the way docker's "events --filter" does: every key
// present must match (AND across keys), any value of a key may match (OR
// within a key), except label, whose values must all match.
type Filter map[string][]string

// objectKeys are the filter keys that name an object; an event passes such
// a key when its actor's ID or name is one of the values.
var objectKeys = []string{"config", "container", "daemon", "network", "node", "plugin", "secret", "service", "volume"}

// Keys are the filter keys GET /events accepts.
var Keys = append([]string{"event", "image", "label", "scope", "type"}, objectKeys...)

// Validate reports the first key or value docker would refuse.
func (f Filter) Validate() error {
	for k, vs := range f {
		if !slices.Contains(Keys, k) {
			return fmt.Errorf("invalid filter '%s'", k)
		}
		if k == "scope" {
			for _, v := range vs {
				if v != "local" && v != "swarm" {
					return fmt.Errorf("invalid filter 'scope=%s'", v)
				}
			}
		}
	}
	return nil
}

// Match reports whether m passes the filter.
func (f Filter) Match(m events.Message) bool {
	if vs, ok := f["type"]; ok && !slices.Contains(vs, string(m.Type)) {
		return false
	}
	if vs, ok := f["event"]; ok {
		// "exec_start: sh -c ..." and "health_status: healthy" filter by
		// the verb before the colon too.
		action := string(m.Action)
		verb, _, _ := strings.Cut(action, ":")
		if !slices.Contains(vs, action) && !slices.Contains(vs, verb) {
			return false
		}
	}
	if vs, ok := f["scope"]; ok && !slices.Contains(vs, m.Scope) {
		return false
	}
	for _, k := range objectKeys {
		if vs, ok := f[k]; ok && !matchActor(vs, m.Actor) {
			return false
		}
	}
	if vs, ok := f["image"]; ok && !matchImage(vs, m) {
		return false
	}
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := m.Actor.Attributes[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func matchActor(values []string, a events.Actor) bool {
	name := a.Attributes["name"]
	for _, v := range values {
		if v == a.ID || (name != "" && v == name) || (len(v) >= 12 && strings.HasPrefix(a.ID, v)) {
			return true
		}
	}
	return false
}

// matchImage matches an image event by the image's ID (full, without
// "sha256:", or a prefix of at least 12 digits), by its reference, or by
// the reference without its tag; a container event by the image it runs.
func matchImage(values []string, m events.Message) bool {
	candidates := []string{m.Actor.Attributes["image"]}
	if m.Type == events.ImageEventType {
		candidates = []string{m.Actor.ID, m.Actor.Attributes["name"]}
	}
	for _, v := range values {
		for _, c := range candidates {
			if c == "" {
				continue
			}
			hex := strings.TrimPrefix(c, "sha256:")
			if v == c || v == hex || (len(v) >= 12 && strings.HasPrefix(hex, strings.TrimPrefix(v, "sha256:"))) {
				return true
			}
			if repo := stripTag(c); repo != c && v == repo {
				return true
			}
		}
	}
	return false
}

// stripTag removes ":tag" from a reference, leaving "host:port/repo" and
// digests alone.
func stripTag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") && !strings.Contains(ref, "@") {
		return ref[:i]
	}
	return ref
}
