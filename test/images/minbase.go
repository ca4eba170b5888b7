package images

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/vm"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// minbaseVersion changes whenever the Minbase recipe changes.
const minbaseVersion = "minbase-1"

// Minbase's suite and names in its index.json.
const (
	minbaseSuite = "bookworm"
	MinbaseName  = "docker.io/berth-test/minbase:bookworm"
)

// minbasePath is the PATH of Debian's official images.
const minbasePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// minbaseTime is every mtime in Minbase's layer and its created date.
var minbaseTime = time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)

// debootstrapTimeout bounds the build; it takes about a minute here.
const debootstrapTimeout = 20 * time.Minute

var minbaseMu sync.Mutex

// Minbase returns the OCI layout of a Debian bookworm image: the rootfs
// `debootstrap --variant=minbase bookworm` makes from the Debian mirror
// this machine's apt uses, as one gzip layer, with Cmd ["bash"] and
// Debian's PATH; index.json names it "bookworm" and MinbaseName. Like the
// official image it has an empty /dev and no downloaded packages, package
// lists, /etc/hostname or /etc/resolv.conf.
//
// It is built once per machine (a minute or two, as root, needing
// debootstrap and the mirror) and then cached: its digests are stable on
// this machine, not across machines. Cached and shared: do not modify.
//
// $BERTH_TEST_MINBASE names a layout built elsewhere instead: a test
// guest (cmd/berth-vm) has neither debootstrap's mirror nor the time,
// and gets the host's through a share.
func Minbase(t testing.TB) string {
	t.Helper()
	dir, err := MinbaseLayout()
	check(t, "debootstrap minbase image", err)
	return dir
}

// MinbaseLayout is Minbase for callers outside tests: the layout's
// directory, built and cached on first use.
func MinbaseLayout() (string, error) {
	if dir := os.Getenv("BERTH_TEST_MINBASE"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			return "", fmt.Errorf("BERTH_TEST_MINBASE: %w", err)
		}
		return dir, nil
	}
	minbaseMu.Lock()
	defer minbaseMu.Unlock()
	dir, err := buildMinbase()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "layout"), nil
}

func buildMinbase() (string, error) {
	if os.Geteuid() != 0 {
		return "", unavailable("debootstrap needs root")
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/debootstrap"); serr != nil {
			return "", unavailable("no debootstrap (apt-get install debootstrap)")
		}
		debootstrap = "/usr/sbin/debootstrap"
	}
	mirror, err := vm.DebianMirror("/", minbaseSuite)
	if err != nil {
		return "", unavailable("%v", err)
	}
	key := cacheKey(minbaseVersion, minbaseSuite, mirror, runtime.GOARCH)
	return cached("minbase", key, func(dir string) error {
		rootfs := filepath.Join(dir, "rootfs")
		if err := runDebootstrap(debootstrap, mirror, rootfs); err != nil {
			return err
		}
		if err := slim(rootfs); err != nil {
			return err
		}
		if err := writeMinbase(filepath.Join(dir, "layout"), rootfs, mirror); err != nil {
			return err
		}
		// The layer is the rootfs now; keeping both would double the entry.
		if err := os.RemoveAll(rootfs); err != nil {
			return fmt.Errorf("remove minbase rootfs: %w", err)
		}
		return nil
	})
}

// runDebootstrap builds the rootfs in a mount namespace of its own:
// debootstrap mounts /proc and /sys in the target (and binds the host's
// /dev when it thinks it runs in a container), and a build that dies
// half-way must not leave those mounts under a directory the cache then
// removes with os.RemoveAll. The mounts die with the namespace.
func runDebootstrap(debootstrap, mirror, rootfs string) error {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return unavailable("no unshare (util-linux) to give debootstrap its own mount namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), debootstrapTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--propagation", "private", "--",
		debootstrap, "--variant=minbase", "--components=main", minbaseSuite, rootfs, mirror)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if merr := mountedUnder(rootfs); merr != nil {
		return merr
	}
	if err != nil {
		detail := tail(string(out), 20)
		if log, rerr := os.ReadFile(filepath.Join(rootfs, "debootstrap", "debootstrap.log")); rerr == nil {
			detail = tail(string(log), 30)
		}
		// Most failures here are the mirror being out of reach.
		return unavailable("debootstrap --variant=minbase %s from %s: %v\n%s", minbaseSuite, mirror, err, detail)
	}
	return nil
}

// mountedUnder fails when anything is mounted at or below dir in this
// process's mount namespace.
func mountedUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		// Field 5 is the mount point, with spaces and the like octal-escaped.
		mp := fields[4]
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			return fmt.Errorf("%s is still mounted after debootstrap: refusing to remove the build", mp)
		}
	}
	return s.Err()
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// slim removes from the rootfs what the official Debian image lacks: the
// downloaded packages and package lists (apt-get update fetches them), and
// the files debootstrap copies from the host (its hostname and
// resolv.conf, which a container gets from its engine).
func slim(rootfs string) error {
	var remove []string
	for _, g := range []string{
		"var/cache/apt/archives/*.deb",
		"var/cache/apt/*.bin",
		"var/lib/apt/lists/*_*",
		"etc/hostname",
		"etc/resolv.conf",
	} {
		m, err := filepath.Glob(filepath.Join(rootfs, g))
		if err != nil {
			return err
		}
		remove = append(remove, m...)
	}
	for _, p := range remove {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("slim minbase rootfs: %w", err)
		}
	}
	return nil
}

// minbaseSkip leaves /dev's contents out of the layer: debootstrap makes
// device nodes there, and an image's /dev is the engine's to fill.
func minbaseSkip(rel string) bool { return strings.HasPrefix(rel, "dev/") }

func writeMinbase(dir, rootfs, mirror string) error {
	l, err := newLayout(dir)
	if err != nil {
		return err
	}
	layer, diffID, err := l.layer(ocispec.MediaTypeImageLayerGzip, gzipped, func(tw *tar.Writer) error {
		return writeDirTar(tw, rootfs, minbaseTime, minbaseSkip)
	})
	if err != nil {
		return err
	}
	created := minbaseTime
	platform := ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	config := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &created,
			Platform: platform,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
			History: []ocispec.History{
				{Created: &created, CreatedBy: fmt.Sprintf("# debootstrap --variant=minbase %s %s (berth test/images)", minbaseSuite, mirror)},
				{Created: &created, CreatedBy: `CMD ["bash"]`, EmptyLayer: true},
			},
		},
		Config: dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			Env: []string{minbasePath},
			Cmd: []string{"bash"},
		}},
	}
	configDesc, err := l.json(ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return err
	}
	desc, err := l.json(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: imagespec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layer},
	})
	if err != nil {
		return err
	}
	desc.Platform = &platform
	desc.Annotations = map[string]string{annotationRefName: minbaseSuite, annotationCtrName: MinbaseName}
	return l.finish(desc)
}
