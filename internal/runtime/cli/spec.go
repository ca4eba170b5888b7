package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/berth-project/berth/internal/linux/caps"
	"github.com/berth-project/berth/internal/linux/rootfs"
	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/berth-project/berth/internal/runtime/specgen"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func specVersion() string { return specs.Version }

func cmdSpec(g *globals, args []string) error {
	fs := flags("spec")
	var bundle string
	var rootless bool
	fs.StringVar(&bundle, "bundle", "", "write config.json into this directory")
	fs.StringVar(&bundle, "b", "", "write config.json into this directory")
	fs.BoolVar(&rootless, "rootless", false, "a spec for a rootless container")
	if err := parse(fs, args); err != nil {
		return err
	}
	spec := specgen.Default()
	if rootless {
		specgen.MakeRootless(spec, uint32(os.Geteuid()), uint32(os.Getegid()))
	}
	path := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: remove it first", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o666)
}

func cmdFeatures(g *globals, args []string) error {
	fs := flags("features")
	if err := parse(fs, args); err != nil {
		return err
	}
	yes, no := true, false
	opts := rootfs.MountOptionNames()
	sort.Strings(opts)
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: caps.All(),
			Cgroup: &features.Cgroup{
				V1: &yes, V2: &yes, Systemd: &yes, SystemdUser: &no, Rdma: &yes,
			},
			Seccomp:  seccomp.Features(),
			Apparmor: &features.Apparmor{Enabled: &no},
			Selinux:  &features.Selinux{Enabled: &no},
			IntelRdt: &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &yes},
			},
		},
		Annotations: map[string]string{
			"org.opencontainers.runtime-spec.features": "berth-runtime",
		},
	}
	return printJSON(f)
}
