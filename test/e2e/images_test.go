package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/registry"
)

// seed starts a registry holding the busybox fixture as e2e/busybox:latest
// and returns the image's reference there.
func seed(t *testing.T) string {
	t.Helper()
	reg := registry.Start(t)
	reg.Push(t, fixture.ImageLayout(t), "e2e/busybox:latest")
	return reg.Host + "/e2e/busybox:latest"
}

// TestImageLifecycleBerth pulls, lists, inspects, tags, saves, removes
// and loads the busybox image with berth, and watches the events.
func TestImageLifecycleBerth(t *testing.T) {
	ref := seed(t)
	repo := strings.TrimSuffix(ref, ":latest")
	d := startDaemon(t)
	since := time.Now().Unix()

	out := d.mustBerth(t, "pull", ref)
	mustContain(t, "berth pull", out, "latest: Pulling from e2e/busybox", ": Pull complete", "Digest: sha256:",
		"Status: Downloaded newer image for "+ref, "\n"+ref+"\n")
	out = d.mustBerth(t, "pull", "-q", ref)
	if out != ref+"\n" {
		t.Errorf("berth pull -q: %q", out)
	}

	out = d.mustBerth(t, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.HasPrefix(lines[1], repo+"   latest    ") {
		t.Fatalf("berth images:\n%s", out)
	}
	id := strings.TrimSpace(d.mustBerth(t, "image", "inspect", "-f", "{{.Id}}", ref))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("inspect -f {{.Id}}: %q", id)
	}
	if q := strings.TrimSpace(d.mustBerth(t, "images", "-q")); q != id[7:19] {
		t.Errorf("images -q: %q, want %q", q, id[7:19])
	}
	var insp []map[string]any
	if err := json.Unmarshal([]byte(d.mustBerth(t, "inspect", ref)), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect JSON: %v", err)
	}
	if insp[0]["Os"] != "linux" || insp[0]["RootFS"].(map[string]any)["Type"] != "layers" {
		t.Errorf("inspect: %v", insp[0])
	}

	d.mustBerth(t, "tag", ref, "mybox:v1")
	out = d.mustBerth(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "mybox")
	if out != "mybox:v1 "+id[7:19]+"\n" {
		t.Errorf("images --format with a reference: %q", out)
	}
	out = d.mustBerth(t, "history", "--format", "json", "mybox:v1")
	if !strings.Contains(out, `"ID":"`+id[7:19]+`"`) {
		t.Errorf("history json: %s", out)
	}

	archive := filepath.Join(scratchDir(t), "busybox.tar")
	d.mustBerth(t, "save", "-o", archive, "mybox:v1")
	if fi, err := os.Stat(archive); err != nil || fi.Size() < 1024 {
		t.Fatalf("save -o: %v", err)
	}
	out = d.mustBerth(t, "rmi", "mybox:v1", ref)
	mustContain(t, "rmi", out, "Untagged: mybox:v1", "Untagged: "+ref, "Deleted: "+id)
	r := d.berth(t, "image", "inspect", ref)
	if r.Code != 1 || r.Stdout != "[]\n" || !strings.Contains(r.Stderr, "Error response from daemon: ") {
		t.Errorf("inspect after rmi: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	out = d.mustBerth(t, "load", "-i", archive)
	mustContain(t, "load", out, "Loaded image: mybox:v1")
	if got := strings.TrimSpace(d.mustBerth(t, "image", "inspect", "-f", "{{.Id}}", "mybox:v1")); got != id {
		t.Errorf("loaded image ID %q, want %q", got, id)
	}

	out = d.mustBerth(t, "events", "--since", itoa(since), "--until", itoa(time.Now().Unix()+1), "--filter", "type=image",
		"--format", "{{.Action}} {{.Actor.Attributes.name}}")
	mustContain(t, "events", out, "pull "+repo+"\n", "tag mybox:v1\n", "untag mybox:v1\n", "delete "+id+"\n", "load mybox:v1\n")

	out = d.mustBerth(t, "image", "prune", "-a", "-f")
	mustContain(t, "prune -a", out, "Deleted Images:", "deleted: "+id, "Total reclaimed space: ")
	if out := d.mustBerth(t, "images", "-q"); out != "" {
		t.Errorf("images after prune -a: %q", out)
	}
}

// TestImageLifecycleDocker drives the same store with the docker CLI.
func TestImageLifecycleDocker(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	out := d.mustDocker(t, "pull", ref)
	mustContain(t, "docker pull", out, "Status: Downloaded newer image for "+ref, ref+"\n")
	out = d.mustDocker(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if out != ref+"\n" {
		t.Errorf("docker images: %q", out)
	}
	berthOut := d.mustBerth(t, "images", "--digests")
	dockerOut := d.mustDocker(t, "images", "--digests")
	if berthOut != dockerOut {
		t.Errorf("berth and docker list differently:\nberth:\n%s\ndocker:\n%s", berthOut, dockerOut)
	}
	if b, dk := d.mustBerth(t, "history", ref), d.mustDocker(t, "history", ref); b != dk {
		t.Errorf("history differs:\nberth:\n%s\ndocker:\n%s", b, dk)
	}
	d.mustDocker(t, "tag", ref, "dockerbox:1")
	out = d.mustDocker(t, "image", "inspect", "-f", "{{.Architecture}} {{index .RepoTags 0}}", "dockerbox:1")
	if !strings.Contains(out, "dockerbox:1") && !strings.Contains(out, ref) {
		t.Errorf("docker image inspect: %q", out)
	}
	archive := filepath.Join(scratchDir(t), "saved.tar")
	d.mustDocker(t, "save", "-o", archive, "dockerbox:1")
	out = d.mustDocker(t, "rmi", "dockerbox:1")
	mustContain(t, "docker rmi", out, "Untagged: dockerbox:1")
	out = d.mustDocker(t, "load", "-i", archive)
	mustContain(t, "docker load", out, "Loaded image: dockerbox:1")
	out = d.mustDocker(t, "system", "df")
	mustContain(t, "docker system df", out, "Images          1         0")
	r := d.docker(t, "pull", strings.TrimSuffix(ref, "busybox:latest")+"nosuch:latest")
	if r.Code != 1 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("docker pull of a missing image: exit %d %q", r.Code, r.Stderr)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
