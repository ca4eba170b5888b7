package images

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// startRegistry runs Debian's docker-registry on a free loopback port
// with its storage in a temporary directory, for this test only, and
// returns its host:port. (test/registry will offer the same to every
// package; this package keeps its own so it depends on no other fixture.)
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		check(t, "docker-registry", unavailable("no docker-registry (apt-get install docker-registry)"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("docker-registry exited: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry not answering on %s: %v\n%s", addr, err, logs.String())
		}
	}
}

// TestPush pushes every cheap image to a real registry and reads back,
// with go-containerregistry, that it serves the layout's digests: the
// zstd layer, the index with its attestation, and the schema2 manifest
// travel unchanged.
func TestPush(t *testing.T) {
	addr := startRegistry(t)
	for repo, layout := range map[string]string{
		"berth-test/busybox:latest": Busybox(t),
		"berth-test/layered:latest": Layered(t),
		"berth-test/multi:latest":   MultiPlatform(t),
		"berth-test/schema2:latest": DockerSchema2(t),
	} {
		ref := addr + "/" + repo
		if err := Push(layout, ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		top, err := topManifest(layout)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Get(r)
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		if got.Digest.String() != top.Digest.String() || string(got.MediaType) != top.MediaType {
			t.Errorf("%s: registry serves %s %s, layout has %s %s", ref, got.MediaType, got.Digest, top.MediaType, top.Digest)
		}
		if top.MediaType == ocispec.MediaTypeImageIndex {
			idx, err := got.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range m.Manifests {
				// Every child manifest is there, the attestation too.
				if _, err := remote.Get(r.Context().Digest(d.Digest.String())); err != nil {
					t.Errorf("%s: child %s: %v", ref, d.Digest, err)
				}
			}
		}
	}
	if err := Push(Layered(t), addr+"/Bad/Name"); err == nil {
		t.Error("push to an invalid reference succeeded")
	}
}

func TestIsLoopback(t *testing.T) {
	for reg, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "127.0.0.2": true,
		"registry.example:5000": false, "10.0.0.1:5000": false, "docker.io": false,
	} {
		if got := isLoopback(reg); got != want {
			t.Errorf("isLoopback(%q) = %v", reg, got)
		}
	}
}

// TestPushAll is hack/test-images.sh's worker: with
// BERTH_TEST_IMAGES_REGISTRY=host:port it builds every image (Minbase
// too) and pushes each under its berth-test/ name there; without it, it
// skips.
func TestPushAll(t *testing.T) {
	registry := os.Getenv("BERTH_TEST_IMAGES_REGISTRY")
	if registry == "" {
		t.Skip("BERTH_TEST_IMAGES_REGISTRY not set (hack/test-images.sh sets it)")
	}
	for _, img := range []struct {
		repo   string
		layout func(testing.TB) string
	}{
		{"berth-test/busybox:latest", Busybox},
		{"berth-test/layered:latest", Layered},
		{"berth-test/multi:latest", MultiPlatform},
		{"berth-test/schema2:latest", DockerSchema2},
		{"berth-test/minbase:bookworm", Minbase},
	} {
		layout := img.layout(t)
		ref := registry + "/" + img.repo
		if err := Push(layout, ref); err != nil {
			t.Fatal(err)
		}
		top, err := topManifest(layout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pushed %s@%s (%s)", ref, top.Digest, top.MediaType)
	}
}
