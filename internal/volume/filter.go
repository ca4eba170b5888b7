package volume

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// listFilter builds the matcher of docker's `volume ls` filters. Values of
// one key are alternatives (any matches), except label, where every value
// must match; keys combine with AND.
func listFilter(filters map[string][]string) (func(*entry) bool, error) {
	var tests []func(*entry) bool
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "dangling":
			want, err := parseBool("dangling", values)
			if err != nil {
				return nil, err
			}
			tests = append(tests, func(e *entry) bool { return (len(e.refs) == 0) == want })
		case "driver":
			tests = append(tests, func(*entry) bool { return anyMatch(values, Driver) })
		case "name":
			tests = append(tests, func(e *entry) bool { return anyMatch(values, e.name) })
		case "label":
			tests = append(tests, func(e *entry) bool { return allLabels(values, e.rec.Labels) })
		default:
			return nil, invalidFilter(key)
		}
	}
	return func(e *entry) bool {
		for _, t := range tests {
			if !t(e) {
				return false
			}
		}
		return true
	}, nil
}

// pruneFilter builds the matcher of docker's `volume prune` filters:
// label, label! and all (API 1.42: without all=true only anonymous
// volumes are pruned).
func pruneFilter(filters map[string][]string) (func(*entry) bool, error) {
	all := false
	var tests []func(*entry) bool
	for key, values := range filters {
		if len(values) == 0 {
			continue
		}
		switch key {
		case "all":
			b, err := parseBool("all", values)
			if err != nil {
				return nil, err
			}
			all = b
		case "label":
			tests = append(tests, func(e *entry) bool { return allLabels(values, e.rec.Labels) })
		case "label!":
			tests = append(tests, func(e *entry) bool {
				for _, v := range values {
					if allLabels([]string{v}, e.rec.Labels) {
						return false
					}
				}
				return true
			})
		default:
			return nil, invalidFilter(key)
		}
	}
	return func(e *entry) bool {
		if _, anon := e.rec.Labels[LabelAnonymous]; !all && !anon {
			return false
		}
		for _, t := range tests {
			if !t(e) {
				return false
			}
		}
		return true
	}, nil
}

func invalidFilter(key string) error {
	return classify(errdefs.ErrInvalid, fmt.Errorf("invalid filter '%s'", key))
}

// parseBool reads a boolean filter; docker takes true/false/1/0 and
// refuses two different answers.
func parseBool(key string, values []string) (bool, error) {
	var out *bool
	for _, v := range values {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return false, classify(errdefs.ErrInvalid, fmt.Errorf("invalid filter '%s=%s'", key, v))
		}
		if out != nil && *out != b {
			return false, classify(errdefs.ErrInvalid, fmt.Errorf("invalid filter '%s': conflicting values", key))
		}
		out = &b
	}
	return *out, nil
}

// anyMatch is docker's filters.Match: each value is a regular expression
// searched in s (a value that does not compile is compared literally).
func anyMatch(values []string, s string) bool {
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

// allLabels reports whether labels has every "key" or "key=value" of
// values.
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
