package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/vm"
	"github.com/berth-project/berth/test/images"
)

// Where the suite's shares appear in the guest. Not under /run: test/peers
// runs containerd with a tmpfs of its own on /run, which would hide the
// runtime binary from containerd's shims.
const (
	guestBin = "/opt/berth-vm/bin"
	guestSrc = "/opt/berth-vm/src"
	// guestMinbase is the host's debootstrap image (test/images.Minbase),
	// staged in the binaries' share: a 9p device fewer for the guest's
	// kernel to probe and its job to mount.
	guestMinbase = guestBin + "/minbase"
	// guestTestCache is the fixture cache in the guest (BERTH_TEST_CACHE):
	// on the guest's own disk, since the fixture mounts overlays on it.
	guestTestCache = "/var/cache/berth-test"
)

// A testPkg is one package whose test binary runs in the guest.
type testPkg struct {
	ImportPath string
	// Rel is the package's directory relative to the module root: the
	// binary runs there, as go test runs it, so testdata/ resolves.
	Rel string
	// Binary is the test binary's file name in the bin share's tests/.
	Binary string
	// DrivesRuntime: the tests import test/runtimetest, so they drive
	// berth-runtime and run a second time with the systemd cgroup driver.
	DrivesRuntime bool
}

// runtimetestPkg is the package whose importers drive berth-runtime.
const runtimetestPkg = "github.com/berth-project/berth/test/runtimetest"

// A suite is the staged test run: a directory shared read-only with the
// guest holding the test binaries, berth-runtime, the probe and the
// busybox-static .deb the fixture builds its rootfs from.
type suite struct {
	dir         string
	modRoot     string
	pkgs        []testPkg
	verbose     bool
	testTimeout time.Duration
	args        []string
	systemd     bool
}

func (s *suite) Close() { os.RemoveAll(s.dir) }

// prepareSuite builds what the guest runs.
func prepareSuite(ctx context.Context, o options, testArgs []string, cache *vm.Cache, log io.Writer) (*suite, error) {
	mod, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	if !o.noBuild {
		fmt.Fprintln(log, "berth-vm: make build")
		if out, err := exec.CommandContext(ctx, "make", "-C", mod, "-s", "build").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("make build: %w\n%s", err, out)
		}
	}
	pkgs, err := listTestPkgs(ctx, mod, strings.FieldsFunc(o.pkgs, func(r rune) bool { return r == ',' || r == ' ' }))
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no test files in %s", o.pkgs)
	}
	dir, err := os.MkdirTemp("", "berth-vm-suite-")
	if err != nil {
		return nil, fmt.Errorf("create suite directory: %w", err)
	}
	s := &suite{dir: dir, modRoot: mod, pkgs: pkgs, verbose: o.verbose, testTimeout: o.testTimeout, args: testArgs, systemd: o.systemdCgroup}
	if err := s.stage(ctx, o, cache, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *suite) stage(ctx context.Context, o options, cache *vm.Cache, log io.Writer) error {
	if err := os.Mkdir(filepath.Join(s.dir, "tests"), 0o755); err != nil {
		return fmt.Errorf("create tests directory: %w", err)
	}
	start := time.Now()
	for _, p := range s.pkgs {
		out := filepath.Join(s.dir, "tests", p.Binary)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", out, p.ImportPath)
		cmd.Dir = s.modRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c %s: %w\n%s", p.ImportPath, err, b)
		}
	}
	fmt.Fprintf(log, "berth-vm: built %d test binaries in %s\n", len(s.pkgs), round(time.Since(start)))
	// Copies, not the files themselves: a make build during the run must
	// not change what the guest is running.
	bin := o.bin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(s.modRoot, bin)
	}
	for _, name := range []string{"berth-runtime", "probe", "berthd", "berth", "berth-shim", "berth-init"} {
		if err := copyFile(filepath.Join(bin, name), filepath.Join(s.dir, name), 0o755); err != nil {
			return fmt.Errorf("stage %s (make build makes it): %w", name, err)
		}
	}
	// The CNI plugins berthd's networks run (hack/cni-plugins.sh builds
	// them into bin/cni, make test-vm runs it).
	cniDir := filepath.Join(s.dir, "cni")
	if err := os.Mkdir(cniDir, 0o755); err != nil {
		return fmt.Errorf("stage cni: %w", err)
	}
	plugins, err := filepath.Glob(filepath.Join(bin, "cni", "*"))
	if err != nil || len(plugins) == 0 {
		return fmt.Errorf("stage cni plugins: none in %s (hack/cni-plugins.sh builds them)", filepath.Join(bin, "cni"))
	}
	for _, p := range plugins {
		if err := copyFile(p, filepath.Join(cniDir, filepath.Base(p)), 0o755); err != nil {
			return fmt.Errorf("stage cni plugin: %w", err)
		}
	}
	// The docker CLI the engine suites drive, when the host has one (it
	// is not one of Debian's packages, so the guest image cannot).
	if docker, err := exec.LookPath("docker"); err == nil {
		if err := os.Mkdir(filepath.Join(s.dir, "docker-cli"), 0o755); err != nil {
			return fmt.Errorf("stage docker CLI: %w", err)
		}
		if err := copyFile(docker, filepath.Join(s.dir, "docker-cli", "docker"), 0o755); err != nil {
			return fmt.Errorf("stage docker CLI: %w", err)
		}
	}
	// The debootstrap image test/images builds: the guest has no mirror
	// to build it from, so it gets the host's (built once, cached).
	minbase, err := images.MinbaseLayout()
	if err != nil {
		return fmt.Errorf("debootstrap minbase image for the guest: %w", err)
	}
	if err := linkTree(minbase, filepath.Join(s.dir, "minbase")); err != nil {
		return fmt.Errorf("stage the minbase image: %w", err)
	}
	deb, err := cache.Deb(ctx, "busybox-static")
	if err != nil {
		return err
	}
	if err := copyFile(deb, filepath.Join(s.dir, filepath.Base(deb)), 0o644); err != nil {
		return fmt.Errorf("stage busybox-static: %w", err)
	}
	return nil
}

// Job returns the guest's part of the suite.
func (s *suite) Job() vm.Job {
	return vm.Job{
		Script: suiteScript(s.pkgs, s.verbose, s.testTimeout, s.args, s.systemd),
		Shares: []vm.Share{
			{Tag: "berth.bin", HostPath: s.dir, GuestPath: guestBin, ReadOnly: true},
			{Tag: "berth.src", HostPath: s.modRoot, GuestPath: guestSrc, ReadOnly: true},
		},
	}
}

// suiteScript returns the sh code that runs each test binary in its
// package directory and prints go test's summary line for it; it exits 1
// when any failed, as go test does. With systemd, the packages that drive
// berth-runtime run a second time with BERTH_TEST_SYSTEMD_CGROUP=1 (see
// test/runtimetest), their summary lines marked "(--systemd-cgroup)": the
// guest has systemd as PID 1, and the driver must be tested where it runs.
//
// The environment is the one the root suites document: BERTH_RUNTIME,
// BERTH_TEST_PROBE, BERTH_BIN_DIR (berthd, berth, the shim and init),
// BERTH_SHIM and BERTH_CNI_PATH name the binaries built on the host (the
// guest has no Go toolchain), BERTH_TEST_MINBASE the host's debootstrap
// image, BERTH_TEST_SCALE a smaller crowd of concurrent containers than
// the host's 100 (emulation is ten times slower, and systemd's job bound
// is 30 s); the fixture finds busybox-static's .deb in its cache's
// debs/ and fails rather than skips when a prerequisite is missing, and so
// do the peers when containerd or podman is (the image has them, see
// guestPackages).
func suiteScript(pkgs []testPkg, verbose bool, timeout time.Duration, args []string, systemd bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `export BERTH_RUNTIME=%[1]s/berth-runtime BERTH_TEST_PROBE=%[1]s/probe
export BERTH_BIN_DIR=%[1]s BERTH_SHIM=%[1]s/berth-shim BERTH_CNI_PATH=%[1]s/cni PATH="$PATH:%[1]s/docker-cli"
export BERTH_TEST_CACHE=%[2]s BERTH_TEST_REQUIRE_FIXTURES=1 BERTH_TEST_REQUIRE_PEERS=1 BERTH_TEST_MINBASE=%[3]s
export BERTH_TEST_SCALE=25
# One program (install -D makes the directory) where mkdir and cp were two.
set -- %[1]s/busybox-static_*.deb
install -D -m 0644 "$1" "$BERTH_TEST_CACHE/debs/${1##*/}" || exit 125
rc=0
# t sets now to the centiseconds since boot, read by the shell itself:
# under emulation every program started costs tens of milliseconds.
t() { read -r up _ </proc/uptime; now=$(( ${up%%.*} * 100 + 1${up#*.} - 100 )); }
pkg() {
	name=$1 bin=$2 dir=$3
	shift 3
	t; s=$now
	(cd "$dir" && "$bin" "$@")
	c=$?
	t; cs=$((now - s)); frac=$((cs %% 100))
	[ $frac -lt 10 ] && frac=0$frac
	el=$((cs / 100)).${frac}s
	if [ $c -eq 0 ]; then
		printf 'ok  \t%%s\t%%s\n' "$name" "$el"
	else
		printf 'FAIL\t%%s\t%%s\n' "$name" "$el"
		rc=1
	fi
}
`, guestBin, guestTestCache, guestMinbase)
	flags := []string{"-test.timeout=" + timeout.String()}
	if verbose {
		flags = append(flags, "-test.v")
	}
	flags = append(flags, args...)
	line := func(name string, p testPkg) {
		fmt.Fprintf(&b, "pkg %s %s %s %s\n", vm.ShellCommand([]string{name}), guestBin+"/tests/"+p.Binary,
			vm.ShellCommand([]string{filepath.Join(guestSrc, p.Rel)}), vm.ShellCommand(flags))
	}
	for _, p := range pkgs {
		line(p.ImportPath, p)
	}
	if systemd {
		b.WriteString("export BERTH_TEST_SYSTEMD_CGROUP=1\n")
		for _, p := range pkgs {
			if p.DrivesRuntime {
				line(p.ImportPath+" (--systemd-cgroup)", p)
			}
		}
	}
	b.WriteString("[ $rc -eq 0 ] || echo FAIL\nexit $rc\n")
	return b.String()
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// listTestPkgs returns the packages of patterns that have test files.
func listTestPkgs(ctx context.Context, mod string, patterns []string) ([]testPkg, error) {
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}\t{{join .TestImports \",\"}},{{join .XTestImports \",\"}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = mod
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", strings.Join(patterns, " "), err, stderr.Bytes())
	}
	return parseTestPkgs(string(out), mod)
}

// parseTestPkgs reads listTestPkgs's go list lines.
func parseTestPkgs(out, mod string) ([]testPkg, error) {
	var pkgs []testPkg
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("go list: unexpected line %q", line)
		}
		if f[2] == "0" && f[3] == "0" {
			continue
		}
		rel, err := filepath.Rel(mod, f[1])
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("go list: package %s is outside the module at %s", f[0], mod)
		}
		pkgs = append(pkgs, testPkg{
			ImportPath:    f[0],
			Rel:           rel,
			Binary:        strings.ReplaceAll(filepath.ToSlash(rel), "/", "_") + ".test",
			DrivesRuntime: slices.Contains(strings.Split(f[4], ","), runtimetestPkg),
		})
	}
	return pkgs, nil
}

// linkTree stages the directory tree src at dst: directories made,
// files hard-linked (the tree is a cache entry, never changed in place,
// and the links go with the suite's directory) or, across filesystems,
// copied. It refuses what an image layout never has (symlinks, devices).
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type().IsRegular():
			if err := os.Link(path, target); err == nil {
				return nil
			}
			return copyFile(path, target, 0o644)
		default:
			return fmt.Errorf("%s: not a regular file or directory", path)
		}
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
