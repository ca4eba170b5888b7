package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the programs berthd starts for containers.
type binaries struct {
	runtime  string            // the default OCI runtime
	runtimes map[string]string // docker's per-container --runtime names
	shim     string
	init     string // "" refuses --init
}

// findBinaries resolves the runtime, the shim and the init: a flag's
// value when given, else the program installed beside berthd (make build
// puts them all in bin/), else the one in PATH.
func findBinaries(o options) (binaries, error) {
	var b binaries
	var err error
	if b.runtime, err = lookBinary(o.runtime, "berth-runtime"); err != nil {
		return b, fmt.Errorf("--runtime: %w", err)
	}
	if b.shim, err = lookBinary(o.shim, "berth-shim"); err != nil {
		return b, fmt.Errorf("--shim: %w", err)
	}
	if o.initPath != "" {
		if b.init, err = lookBinary(o.initPath, ""); err != nil {
			return b, fmt.Errorf("--init-path: %w", err)
		}
	} else {
		for _, name := range []string{"berth-init", "docker-init", "tini-static"} {
			if p, err := lookBinary("", name); err == nil {
				b.init = p
				break
			}
		}
	}
	// The names docker users know resolve in PATH when a container asks
	// for them (the engine refuses a name that resolves to nothing).
	b.runtimes = map[string]string{"runc": "runc", "crun": "crun"}
	if p, err := lookBinary("", "berth-runtime"); err == nil {
		b.runtimes["berth-runtime"] = p
	}
	for _, spec := range o.addRuntimes {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" || strings.ContainsAny(name, "/ ") {
			return b, fmt.Errorf("invalid --add-runtime %q: want name=path", spec)
		}
		b.runtimes[name] = path
	}
	return b, nil
}

// lookBinary resolves flag (a path or a name in PATH) or, when it is
// empty, name beside the berthd executable and then in PATH.
func lookBinary(flag, name string) (string, error) {
	if flag != "" {
		p, err := exec.LookPath(flag)
		if err != nil {
			return "", err
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s is neither beside berthd nor in PATH", name)
		}
		return "", err
	}
	return filepath.Abs(p)
}
