// Command berth-vm boots a Debian guest with cgroup v2 and systemd as PID 1
// and runs commands or berth's root test suites in it. See internal/vm.
//
//	berth-vm test [flags] [--pkgs PATTERNS] [-- TEST-BINARY-FLAGS]
//	berth-vm run [flags] -- COMMAND [ARG...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/internal/vm"
)

const usage = `usage:
  berth-vm test [flags] [--pkgs PATTERNS] [-- TEST-BINARY-FLAGS]
      build the test binaries of PATTERNS (comma or space separated go
      package patterns) and run them as root in the guest, with
      bin/berth-runtime and bin/probe (see --bin); those that drive
      berth-runtime run once more with its systemd cgroup driver (see
      --systemd-cgroup); exits with their status
  berth-vm run [flags] -- COMMAND [ARG...]
      run COMMAND as root in the guest; exits with its status

The guest boots with cgroup v2 only; the first output lines are its kernel
release and the filesystem type of its /sys/fs/cgroup, which must be
cgroup2fs. Flags:
`

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the flags both commands share.
type options struct {
	cache       string
	accel       string
	machine     string
	cpus        int
	memory      int
	bootTimeout time.Duration
	timeout     time.Duration
	kernelArgs  stringList
	console     string
	// test only
	pkgs        string
	bin         string
	verbose     bool
	testTimeout time.Duration
	noBuild     bool
	// systemdCgroup: run the packages that drive berth-runtime again
	// with its systemd cgroup driver.
	systemdCgroup bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runCLI(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "test" && args[0] != "run") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb := args[0]
	o := options{}
	fs := flag.NewFlagSet("berth-vm "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.cache, "cache", vm.DefaultCacheDir, "cache `dir` for kernels and guest images")
	fs.StringVar(&o.accel, "accel", "auto", "accelerator: auto, tcg or kvm")
	fs.StringVar(&o.machine, "machine", "microvm", "qemu machine: microvm or pc")
	fs.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	fs.IntVar(&o.memory, "memory", 2048, "guest memory in MiB")
	fs.DurationVar(&o.bootTimeout, "boot-timeout", 2*time.Minute, "fail when the guest has not started the job by then")
	fs.StringVar(&o.console, "console", "", "keep the guest's serial console log in `file`")
	fs.Var(&o.kernelArgs, "kernel-arg", "extra guest kernel `argument` (repeatable)")
	if verb == "test" {
		fs.DurationVar(&o.timeout, "timeout", 40*time.Minute, "bound on the whole run")
		fs.StringVar(&o.pkgs, "pkgs", "./internal/linux/...,./test/...", "go package `patterns` whose tests run in the guest")
		fs.StringVar(&o.bin, "bin", "bin", "`dir` with berth-runtime and probe (make build)")
		fs.BoolVar(&o.verbose, "v", false, "verbose test output (-test.v)")
		// Under emulation the root suites run several times slower than
		// on the host; a hung test still ends before the run's bound,
		// with its goroutines dumped.
		fs.DurationVar(&o.testTimeout, "test-timeout", 20*time.Minute, "-test.timeout of each test binary")
		fs.BoolVar(&o.noBuild, "no-build", false, "do not run make build first (the Makefile already has)")
		fs.BoolVar(&o.systemdCgroup, "systemd-cgroup", true, "run the packages whose tests drive berth-runtime (those importing test/runtimetest) a second time with --systemd-cgroup")
	} else {
		fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	rest := fs.Args()
	if verb == "run" && len(rest) == 0 {
		fmt.Fprintln(stderr, "berth-vm run: no command (berth-vm run -- COMMAND [ARG...])")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	code, err := runVerb(ctx, verb, o, rest, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "berth-vm %s: %v\n", verb, err)
		if code == 0 {
			code = 1
		}
	}
	fmt.Fprintf(stderr, "berth-vm: whole command %s\n", round(time.Since(start)))
	return code
}

func runVerb(ctx context.Context, verb string, o options, rest []string, stdout, stderr io.Writer) (int, error) {
	if os.Geteuid() != 0 {
		return 1, errors.New("needs root: builds images with debootstrap and chroot")
	}
	cache := &vm.Cache{Dir: o.cache, Log: stderr}
	var job vm.Job
	if verb == "test" {
		suite, err := prepareSuite(ctx, o, rest, cache, stderr)
		if err != nil {
			return 1, err
		}
		defer suite.Close()
		job = suite.Job()
	} else {
		job = vm.Job{Script: vm.ShellCommand(rest)}
	}
	// Both commands exist to test berth where the build hosts cannot:
	// cgroup v2 only.
	job.RequireCgroupFS = "cgroup2fs"
	job.Output = stdout
	first := "first job line"
	if verb == "test" {
		first = "first test line"
	}
	return boot(ctx, o, cache, job, first, stderr)
}

// boot prepares the kernel and image, runs job and reports the result.
// first names the job's first output line in the timing summary.
func boot(ctx context.Context, o options, cache *vm.Cache, job vm.Job, first string, stderr io.Writer) (int, error) {
	k, err := cache.Kernel(ctx)
	if err != nil {
		return 1, err
	}
	mirror, err := vm.DebianMirror("/", "bookworm")
	if err != nil {
		return 1, err
	}
	bb, err := cache.Deb(ctx, "busybox-static")
	if err != nil {
		return 1, err
	}
	recipe := vm.NewRecipe(k, mirror, baseName(bb), guestPackages...)
	img, err := cache.Image(ctx, recipe, k)
	if err != nil {
		return 1, err
	}
	m := &vm.Machine{
		Image:       img,
		Type:        o.machine,
		CPUs:        o.cpus,
		MemoryMiB:   o.memory,
		BootTimeout: o.bootTimeout,
		Timeout:     o.timeout,
		Log:         stderr,
		ConsoleLog:  o.console,
		// Only cgroup v2: systemd mounts the unified hierarchy, and the
		// kernel offers no controller to a v1 mount, so nothing can make
		// the guest hybrid behind the tests' back.
		KernelArgs: append([]string{"systemd.unified_cgroup_hierarchy=1", "cgroup_no_v1=all"}, o.kernelArgs...),
	}
	switch o.accel {
	case "auto":
	case "tcg", "kvm":
		m.Accel = vm.Accel(o.accel)
	default:
		return 2, fmt.Errorf("--accel %q: want auto, tcg or kvm", o.accel)
	}
	fmt.Fprintf(stderr, "berth-vm: kernel %s, image %s, machine %s\n", k.Package+" "+k.Version, baseName(img.Dir), o.machine)
	res, err := m.Run(ctx, job)
	if err != nil {
		return 1, err
	}
	firstJob := "none printed"
	if res.FirstJobLine > 0 {
		firstJob = round(res.FirstJobLine).String()
	}
	fmt.Fprintf(stderr, "berth-vm: qemu (%s) start to first guest line %s, to %s %s; qemu ran %s\n",
		res.Accel, round(res.FirstLine), first, firstJob, round(res.Total))
	if res.CgroupFS != "cgroup2fs" {
		return 1, fmt.Errorf("guest /sys/fs/cgroup is %q, not cgroup2fs", res.CgroupFS)
	}
	if res.ExitCode != 0 {
		fmt.Fprintf(stderr, "berth-vm: guest job exited with status %d\n", res.ExitCode)
	}
	return res.ExitCode, nil
}

// guestPackages are what berth's suites need in the guest beyond the base
// recipe: test/peers drives berth-runtime through containerd (ctr and its
// runc shim) and podman (conmon), on cgroup v2 and with systemd's driver.
// Their Recommends stay out (debootstrap installs Depends only): the tests
// run with --network none. debootstrap does not resolve virtual packages,
// so podman's container-network-stack is named: netavark, the smaller of
// its two providers. docker-registry is the local registry the image and
// engine suites push to and pull from (test/registry); nftables and
// iptables the two firewalls berthd's bridge networks program
// (internal/network).
var guestPackages = []string{"containerd", "podman", "netavark", "docker-registry", "nftables", "iptables"}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

func baseName(p string) string { return p[strings.LastIndex(p, "/")+1:] }
