package specconv

import (
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/runtime/specgen"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Values of --security-opt seccomp= that are not a profile.
const (
	seccompUnconfined = "unconfined"
	seccompBuiltin    = "builtin"
)

// securityOpts is --security-opt, parsed.
type securityOpts struct {
	seccomp           string // "", "unconfined", "builtin" or a profile's JSON
	noNewPrivs        *bool
	systemPaths       bool // systempaths=unconfined
	writableCgroups   *bool
	apparmor          string
	labels            []string
	mask, unmask      []string
	unmaskAll         bool
	labelDisabled     bool
	selinuxProcess    string
	selinuxMountLabel string
}

// parseSecurityOpts parses docker's --security-opt list. Options asking
// for a mechanism the host lacks are refused, except those that only ask
// for less confinement than the host gives anyway (apparmor=unconfined,
// label=disable), which portable compose files often carry.
func parseSecurityOpts(list []string, h *Host) (*securityOpts, error) {
	s := &securityOpts{}
	for _, opt := range list {
		if opt == "no-new-privileges" {
			t := true
			s.noNewPrivs = &t
			continue
		}
		sep := "="
		if !strings.Contains(opt, "=") {
			sep = ":" // the separator of old clients
		}
		key, val, ok := strings.Cut(opt, sep)
		if !ok {
			return nil, invalid("--security-opt %q: want KEY=VALUE", opt)
		}
		switch key {
		case "seccomp":
			if val == "" {
				return nil, invalid("--security-opt seccomp: empty profile")
			}
			s.seccomp = val
		case "no-new-privileges", "writable-cgroups":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, invalid("--security-opt %s=%q: want true or false", key, val)
			}
			if key == "no-new-privileges" {
				s.noNewPrivs = &b
			} else {
				s.writableCgroups = &b
			}
		case "systempaths":
			if val != "unconfined" {
				return nil, invalid("--security-opt systempaths=%q: only \"unconfined\" is supported", val)
			}
			s.systemPaths = true
		case "apparmor":
			if val == "" {
				return nil, invalid("--security-opt apparmor: empty profile name")
			}
			if val != "unconfined" && !h.AppArmor {
				return nil, invalid("--security-opt apparmor=%s: AppArmor is not enabled on this host", val)
			}
			s.apparmor = val
		case "label":
			if val == "disable" {
				s.labelDisabled = true
				continue
			}
			if !h.SELinux {
				return nil, invalid("--security-opt label=%s: SELinux is not enabled on this host", val)
			}
			s.labels = append(s.labels, val)
		case "mask", "unmask":
			for _, p := range strings.Split(val, ":") {
				if key == "unmask" && p == "ALL" {
					s.unmaskAll = true
					continue
				}
				if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsRune(p, 0) {
					return nil, invalid("--security-opt %s: %q is not a clean absolute path", key, p)
				}
				if key == "mask" {
					s.mask = append(s.mask, p)
				} else {
					s.unmask = append(s.unmask, p)
				}
			}
		default:
			return nil, invalid("--security-opt %q: unknown option %q", opt, key)
		}
	}
	if err := s.selinux(); err != nil {
		return nil, err
	}
	return s, nil
}

// selinux builds the process and mount labels from label=user:U,
// role:R, type:T, level:L and filetype:F over docker's container
// defaults. Without label options no label is set, as dockerd does by
// default (--selinux-enabled=false).
func (s *securityOpts) selinux() error {
	if len(s.labels) == 0 || s.labelDisabled {
		return nil
	}
	proc := []string{"system_u", "system_r", "container_t", "s0"}
	mnt := []string{"system_u", "object_r", "container_file_t", "s0"}
	for _, l := range s.labels {
		k, v, ok := strings.Cut(l, ":")
		if !ok || v == "" || strings.ContainsAny(v, "\x00\n") {
			return invalid("--security-opt label=%s: want user:, role:, type:, level: or filetype: and a value", l)
		}
		switch k {
		case "user":
			proc[0], mnt[0] = v, v
		case "role":
			proc[1] = v
		case "type":
			proc[2] = v
		case "level":
			proc[3], mnt[3] = v, v
		case "filetype":
			mnt[2] = v
		default:
			return invalid("--security-opt label=%s: unknown label field %q", l, k)
		}
	}
	// The level is last and may itself contain colons (s0:c1,c2).
	s.selinuxProcess = strings.Join(proc, ":")
	s.selinuxMountLabel = strings.Join(mnt, ":")
	return nil
}

// systemPaths returns the masked and read-only paths: SECURITY.md's
// (docker's) with the host's thermal_throttle directories, or the API's
// lists, none for privileged containers and systempaths=unconfined, then
// mask= added and unmask= removed.
func systemPaths(o *Options, s *securityOpts, h *Host) (masked, readonly []string, err error) {
	masked = append(slices.Clone(specgen.MaskedPaths), h.ThermalThrottle...)
	readonly = slices.Clone(specgen.ReadonlyPaths)
	if o.Privileged {
		masked, readonly = nil, nil
	}
	if o.MaskedPaths != nil {
		masked = slices.Clone(o.MaskedPaths)
	}
	if o.ReadonlyPaths != nil {
		readonly = slices.Clone(o.ReadonlyPaths)
	}
	if s.systemPaths {
		masked, readonly = nil, nil
	}
	for _, p := range append(slices.Clone(masked), readonly...) {
		if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
			return nil, nil, invalid("masked or read-only path %q is not absolute", p)
		}
	}
	for _, p := range s.mask {
		if !slices.Contains(masked, p) {
			masked = append(masked, p)
		}
	}
	if s.unmaskAll {
		return nil, nil, nil
	}
	drop := func(list []string) []string {
		return slices.DeleteFunc(list, func(p string) bool { return slices.Contains(s.unmask, p) })
	}
	return drop(masked), drop(readonly), nil
}

// seccompProfile is docker's choice: none for unconfined and privileged
// containers, the user's profile when given, else Docker's default
// profile from github.com/moby/profiles/seccomp. Both are rendered for
// the capabilities the container ends with (the profile allows some
// syscalls only with a capability in the bounding set), so spec must
// have its capabilities set.
func seccompProfile(s *securityOpts, o *Options, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	switch {
	case s.seccomp == seccompUnconfined, o.Privileged:
		return nil, nil
	case s.seccomp == "" || s.seccomp == seccompBuiltin:
		p, err := seccomp.GetDefaultProfile(spec)
		if err != nil {
			return nil, invalid("default seccomp profile: %v", err)
		}
		return p, nil
	default:
		p, err := seccomp.LoadProfile(s.seccomp, spec)
		if err != nil {
			return nil, invalid("--security-opt seccomp: %v", err)
		}
		if p == nil {
			return nil, invalid("--security-opt seccomp: the profile has no defaultAction and no syscalls; use seccomp=unconfined to run without a filter")
		}
		return p, nil
	}
}

// apparmorProfile is the profile to confine the process with on an
// AppArmor host: the user's, "unconfined" for privileged containers, else
// the engine's.
func apparmorProfile(s *securityOpts, o *Options, h *Host) string {
	switch {
	case !h.AppArmor:
		return ""
	case s.apparmor != "":
		return s.apparmor
	case o.Privileged:
		return "unconfined"
	default:
		return h.AppArmorProfile
	}
}
