package specconv

import (
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/runtime/specgen"
)

const allCaps = "ALL"

// capabilities is docker's set arithmetic: privileged gets every
// capability the engine holds; --cap-add ALL every one but those dropped;
// --cap-drop ALL only those added; otherwise the defaults minus the
// dropped plus the added, in that order.
func capabilities(o *Options, h *Host) ([]string, error) {
	if o.Privileged {
		return slices.Clone(h.Capabilities), nil
	}
	add, err := normalizeCaps("--cap-add", o.CapAdd, h, true)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps("--cap-drop", o.CapDrop, h, false)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(add, allCaps):
		for _, c := range h.Capabilities {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
		return out, nil
	case slices.Contains(drop, allCaps):
	default:
		for _, c := range specgen.DefaultCapabilities {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
	}
	for _, c := range add {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// normalizeCaps upper-cases names and adds the CAP_ prefix, as docker
// does. A name the kernel table lacks is an error; so is adding one the
// engine does not hold (it could not hand it on). Dropping one the engine
// lacks is allowed: there is nothing to drop.
func normalizeCaps(flag string, list []string, h *Host, adding bool) ([]string, error) {
	var out []string
	for _, c := range list {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == allCaps {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if _, ok := caps.Number(c); !ok {
			return nil, invalid("%s: unknown capability: %q", flag, c)
		}
		if adding && !slices.Contains(h.Capabilities, c) {
			return nil, invalid("%s: capability not supported by your kernel or not available in the current environment: %q", flag, c)
		}
		out = append(out, c)
	}
	return out, nil
}
