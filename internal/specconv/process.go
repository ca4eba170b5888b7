package specconv

import (
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/rlimit"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPathEnv is docker's PATH for containers whose image sets none.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initPath is where the engine's init is bound, docker's path, which some
// images and scripts look for.
const initPath = "/sbin/docker-init"

// args combines Entrypoint and Cmd as docker does: an explicit
// --entrypoint (even an empty one) replaces the image's and drops the
// image's Cmd; a Cmd given by the user replaces the image's; the process
// runs entrypoint followed by cmd.
func args(img *ocispec.ImageConfig, o *Options) ([]string, error) {
	entry, cmd := img.Entrypoint, img.Cmd
	if o.EntrypointSet {
		entry, cmd = o.Entrypoint, nil
		if len(entry) == 1 && entry[0] == "" {
			entry = nil // the docker CLI's --entrypoint ""
		}
	}
	if len(o.Cmd) > 0 {
		cmd = o.Cmd
	}
	out := append(append([]string(nil), entry...), cmd...)
	if len(out) == 0 {
		return nil, invalid("no command specified")
	}
	if out[0] == "" {
		return nil, invalid("the command is an empty string")
	}
	for _, a := range out {
		if strings.ContainsRune(a, 0) {
			return nil, invalid("command argument %q contains a NUL byte", a)
		}
	}
	return out, nil
}

// environment is docker's: PATH, HOSTNAME and (with a terminal) TERM
// first, then the image's Env and the user's, each replacing an earlier
// entry with the same key. HOME comes from the user's passwd entry when
// nothing set it (runc would add it at start; the spec says so itself
// for runtimes that do not).
func environment(img *ocispec.ImageConfig, o *Options, hostname, home string) ([]string, error) {
	env := []string{DefaultPathEnv, "HOSTNAME=" + hostname}
	if o.Tty {
		env = append(env, "TERM=xterm")
	}
	var err error
	if env, err = mergeEnv(env, img.Env, "image"); err != nil {
		return nil, err
	}
	if env, err = mergeEnv(env, o.Env, "--env"); err != nil {
		return nil, err
	}
	if !hasKey(env, "HOME") {
		env = append(env, "HOME="+home)
	}
	return env, nil
}

// mergeEnv replaces or appends each of add in env; an entry without "="
// removes the key.
func mergeEnv(env, add []string, from string) ([]string, error) {
	for _, e := range add {
		key, _, hasValue := strings.Cut(e, "=")
		if key == "" {
			return nil, invalid("%s: environment variable %q has no name", from, e)
		}
		if strings.ContainsRune(e, 0) {
			return nil, invalid("%s: environment variable %q contains a NUL byte", from, key)
		}
		i := indexKey(env, key)
		switch {
		case !hasValue && i >= 0:
			env = append(env[:i:i], env[i+1:]...)
		case !hasValue:
		case i >= 0:
			env[i] = e
		default:
			env = append(env, e)
		}
	}
	return env, nil
}

func indexKey(env []string, key string) int {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return i
		}
	}
	return -1
}

func hasKey(env []string, key string) bool { return indexKey(env, key) >= 0 }

// workingDir is the user's, else the image's, else "/"; it must be
// absolute.
func workingDir(img *ocispec.ImageConfig, o *Options) (string, error) {
	wd := img.WorkingDir
	if o.WorkingDir != "" {
		wd = o.WorkingDir
	}
	if wd == "" {
		return "/", nil
	}
	if !path.IsAbs(wd) || strings.ContainsRune(wd, 0) {
		return "", invalid("the working directory %q is invalid, it needs to be an absolute path", wd)
	}
	return path.Clean(wd), nil
}

// rlimits maps --ulimit to process.rlimits. Without CAP_SYS_RESOURCE the
// engine cannot hand a container a hard limit above its own, and the
// runtime would fail with a bare EPERM; the error here names the limit.
func rlimits(ul []Ulimit, h *Host) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, u := range ul {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		if _, err := rlimit.Parse(name); err != nil || u.Name == "" {
			return nil, invalid("--ulimit: unknown limit %q", u.Name)
		}
		if seen[name] {
			return nil, invalid("--ulimit %s given twice", u.Name)
		}
		seen[name] = true
		soft, err := ulimitValue(u.Name, "soft", u.Soft)
		if err != nil {
			return nil, err
		}
		hard, err := ulimitValue(u.Name, "hard", u.Hard)
		if err != nil {
			return nil, err
		}
		if soft > hard {
			return nil, invalid("--ulimit %s: soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
		}
		if ceil, ok := h.RlimitHard[name]; ok && !h.CanRaiseRlimits && hard > ceil {
			return nil, invalid("--ulimit %s: hard limit %s is above this host's %s (%s): raising it needs CAP_SYS_RESOURCE, which the engine lacks",
				u.Name, limitString(hard), name, limitString(ceil))
		}
		out = append(out, specs.POSIXRlimit{Type: name, Soft: soft, Hard: hard})
	}
	return out, nil
}

func ulimitValue(name, which string, v int64) (uint64, error) {
	if v == -1 {
		return math.MaxUint64, nil // RLIM_INFINITY
	}
	if v < 0 {
		return 0, invalid("--ulimit %s: %s limit %d is negative", name, which, v)
	}
	return uint64(v), nil
}

func limitString(v uint64) string {
	if v == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
