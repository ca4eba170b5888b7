package specconv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/linux/caps"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
berth:x:1000:1000:berth:/home/berth:/bin/sh
homeless:x:1001:1001:no home::/bin/sh
broken:x:notanumber:0:root in runc's parser:/:/bin/sh
2000:x:3000:3000:a name that looks like a uid:/n:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const testGroup = `root:x:0:root
daemon:x:1:
tty:x:5:
staff:x:50:berth,other
audio:x:29:berth
berth:x:1000:
homeless:x:1001:
2000:x:4000:
nogroup:x:65534:
`

// testHost is a host with every capability but CAP_SYS_RESOURCE (as this
// build machine's root), cgroup v1, an open-files ceiling of 20000 and
// docker's default sysctls.
func testHost() *Host {
	var all []string
	for _, c := range caps.All() {
		if c != "CAP_SYS_RESOURCE" {
			all = append(all, c)
		}
	}
	return &Host{
		CgroupParent:    "/berth",
		SwapLimit:       true,
		Capabilities:    all,
		NumCPU:          4,
		OnlineCPUs:      "0-3",
		OnlineMems:      "0",
		Hostname:        "the-host",
		ThermalThrottle: []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"},
		RlimitHard:      map[string]uint64{"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 1 << 62},
		DefaultSysctls: map[string]string{
			"net.ipv4.ping_group_range":           "0 2147483647",
			"net.ipv4.ip_unprivileged_port_start": "0",
		},
	}
}

// testRootfs makes a rootfs with the test passwd and group files.
func testRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "etc/passwd"), testPasswd)
	writeFile(t, filepath.Join(dir, "etc/group"), testGroup)
	return dir
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testImage is an image whose Cmd is /bin/sh.
func testImage() *dockerspec.DockerOCIImage {
	img := &dockerspec.DockerOCIImage{}
	img.OS = "linux"
	img.Config.ImageConfig = ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/image/bin:/bin"}}
	return img
}

// mustSpec builds a spec for the test image with o edited by edit.
func mustSpec(t *testing.T, h *Host, edit func(o *Options)) *specs.Spec {
	t.Helper()
	s, _, err := trySpec(t, h, edit)
	if err != nil {
		t.Fatalf("Spec: %v", err)
	}
	return s
}

func trySpec(t *testing.T, h *Host, edit func(o *Options)) (*specs.Spec, []string, error) {
	t.Helper()
	o := &Options{ContainerID: testID, Rootfs: testRootfs(t)}
	if edit != nil {
		edit(o)
	}
	if h == nil {
		h = testHost()
	}
	return Spec(testImage(), o, h)
}

// wantErr checks that err is an ErrInvalid mentioning every one of parts.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func findMount(s *specs.Spec, dest string) (specs.Mount, bool) {
	for _, m := range s.Mounts {
		if m.Destination == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return n, true
		}
	}
	return specs.LinuxNamespace{}, false
}

func envValue(env []string, key string) (string, bool) {
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v, true
		}
	}
	return "", false
}
