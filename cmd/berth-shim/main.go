// Command berth-shim supervises one container: it holds the container's
// stdio or pty, writes its log, reaps it and records its exit, and serves
// the engine on a unix socket in the container's state directory, outliving
// the engine. See internal/shim and docs/engine.md.
//
//	berth-shim --id ID --bundle DIR --runtime PATH [--runtime-root DIR]
//	           [--systemd-cgroup] [--log PATH --log-max-size N --log-max-file N]
//	           [--tty] [--stdin] [--ready-fd N] [--exec-runtime]
//	berth-shim --standby --ready-fd N
//	berth-shim --resume-fd N (the first form's flags but --ready-fd)
//
// A standby (started by shim.Spawn ahead of need) reads the command line of
// its container, as a JSON array, from the ready descriptor. --resume-fd
// is the shim's own: an idle shim re-executes itself with it, to shed the
// memory creating its container left behind (internal/shim/shed.go).
//
// When the runtime is berth-runtime, the shim runs its lifecycle (create,
// start, kill, pause, resume, delete) in its own process, as a library
// (internal/runtimeclient/inprocess), rather than executing the binary for
// each; --exec-runtime, or a build without cgo, executes it always.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/linux/userns"
	"github.com/berth-project/berth/internal/logs"
	"github.com/berth-project/berth/internal/shim"
)

func main() {
	// The runtime's code, run in process, starts this binary as the
	// holder of a user namespace for idmapped mounts.
	userns.Hold()
	// One shim per container: small rather than fast. An idle shim that
	// shed holds about 1 MiB of its own (heap, stacks, runtime) beside
	// the binary's pages, which all shims share. One P: the shim has
	// nothing to run in parallel, and each P brings caches of its own
	// (Spawn sets GOMAXPROCS=1 already, for package initialisation). A lower GOGC and a
	// soft limit keep a burst of output from leaving a large heap behind.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(8 << 20)

	args := os.Args[1:]
	cfg, execRuntime, standby, resumeFD, err := parseArgs(args)
	if err != nil {
		os.Exit(2)
	}
	if standby {
		// Started ahead of need: the container's command line comes on
		// the ready descriptor, which then carries the report as usual.
		if cfg.ReadyFD < 0 {
			fmt.Fprintln(os.Stderr, "berth-shim: --standby needs --ready-fd")
			os.Exit(2)
		}
		warm()
		args, err = shim.AwaitArgs(cfg.ReadyFD)
		if errors.Is(err, io.EOF) {
			os.Exit(0) // the spawner went away: nothing to serve
		}
		fd := cfg.ReadyFD
		if err == nil {
			cfg, execRuntime, standby, resumeFD, err = parseArgs(args)
			if err == nil && (standby || resumeFD >= 0) {
				err = errors.New("--standby or --resume-fd given to a standby")
			}
		}
		if err != nil {
			shim.ReportError(fd, fmt.Errorf("standby: %w", err))
			os.Exit(2)
		}
		cfg.ReadyFD = fd
	}
	if !execRuntime {
		cfg.InProcess = inProcess(cfg.Runtime)
	}
	cfg.Args = withoutFlags(args, "ready-fd", "resume-fd")
	if resumeFD >= 0 {
		// The shim's next image, after it shed (internal/shim/shed.go).
		if err := shim.Resume(cfg, resumeFD); err != nil {
			fmt.Fprintf(os.Stderr, "berth-shim: %s: %v\n", cfg.ID, err)
			os.Exit(1)
		}
		return
	}
	if err := shim.Serve(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "berth-shim: %s: %v\n", cfg.ID, err)
		os.Exit(1)
	}
}

// parseArgs parses the shim's command line.
func parseArgs(args []string) (cfg shim.Config, execRuntime, standby bool, resumeFD int, err error) {
	fs := flag.NewFlagSet("berth-shim", flag.ContinueOnError)
	fs.StringVar(&cfg.ID, "id", "", "container id")
	fs.StringVar(&cfg.Bundle, "bundle", "", "bundle and state directory")
	fs.StringVar(&cfg.Runtime, "runtime", "", "OCI runtime binary")
	fs.StringVar(&cfg.RuntimeRoot, "runtime-root", "", "the runtime's --root")
	fs.BoolVar(&cfg.SystemdCgroup, "systemd-cgroup", false, "pass --systemd-cgroup to the runtime")
	fs.StringVar(&cfg.Log, "log", "", "json-file log of the container's output (none: discarded)")
	fs.Int64Var(&cfg.LogConfig.MaxSize, "log-max-size", logs.DefaultMaxSize, "rotate the log past this many bytes (<= 0: never)")
	fs.IntVar(&cfg.LogConfig.MaxFiles, "log-max-file", logs.DefaultMaxFiles, "log files kept")
	fs.BoolVar(&cfg.Tty, "tty", false, "give the container a terminal")
	fs.BoolVar(&cfg.Stdin, "stdin", false, "keep the container's stdin open for attached clients")
	fs.IntVar(&cfg.ReadyFD, "ready-fd", -1, "descriptor to report readiness on")
	fs.BoolVar(&execRuntime, "exec-runtime", false, "execute the runtime for every step, even berth-runtime")
	fs.BoolVar(&standby, "standby", false, "wait for the container's command line on the ready descriptor")
	fs.IntVar(&resumeFD, "resume-fd", -1, "take over a running container from the state on this descriptor (a shim that shed)")
	if err := fs.Parse(args); err != nil {
		return cfg, false, false, -1, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "berth-shim: unexpected arguments %q\n", fs.Args())
		return cfg, false, false, -1, errors.New("unexpected arguments")
	}
	return cfg, execRuntime, standby, resumeFD, nil
}

// withoutFlags returns args without the integer flags named (as -name N,
// --name N, -name=N or --name=N).
func withoutFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if name == a {
			out = append(out, a)
			continue
		}
		name, _, hasValue := strings.Cut(name, "=")
		if !slices.Contains(names, name) {
			out = append(out, a)
			continue
		}
		if !hasValue {
			i++ // its value
		}
	}
	return out
}
