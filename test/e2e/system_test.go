package e2e

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerVersionAndInfo(t *testing.T) {
	d := startDaemon(t)
	out := d.mustDocker(t, "version")
	mustContain(t, "docker version", out, "Server: Berth", "Engine:", "API version:      1.57 (minimum version 1.44)", "OS/Arch:          linux/")
	out = d.mustDocker(t, "info")
	mustContain(t, "docker info", out, "Images: 0", "Storage Driver: ", "Cgroup Driver: "+defaultCgroupDriver(),
		"Docker Root Dir: "+d.DataRoot, "Operating System: ", "seccomp")
	out = d.mustDocker(t, "info", "--format", "{{.NCPU}} {{.OSType}} {{.Images}}")
	if f := strings.Fields(out); len(f) != 3 || f[0] == "0" || f[1] != "linux" || f[2] != "0" {
		t.Errorf("docker info --format: %q", out)
	}
}

func TestBerthVersionAndInfo(t *testing.T) {
	d := startDaemon(t)
	out := d.mustBerth(t, "version")
	mustContain(t, "berth version", out, "Client:", "API version:       1.57", "Server: Berth", "Engine:", "(minimum version 1.44)")
	out = d.mustBerth(t, "version", "--format", "{{.Server.APIVersion}}")
	if strings.TrimSpace(out) != "1.57" {
		t.Errorf("berth version --format: %q", out)
	}
	out = d.mustBerth(t, "info")
	mustContain(t, "berth info", out, "Images: 0", "Berth Root Dir: "+d.DataRoot)
	out = d.mustBerth(t, "system", "df")
	mustContain(t, "berth system df", out, "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE", "Images          0         0         0B        0B")
}

func TestAPIVersionEdges(t *testing.T) {
	d := startDaemon(t)
	for _, c := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/_ping", 200, ""},
		{"/v1.44/version", 200, ""},
		{"/v1.57/images/json", 200, ""},
		{"/v1.43/_ping", 400, "client version 1.43 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"},
		{"/v1.58/version", 400, "client version 1.58 is too new. Maximum supported API version is 1.57"},
		{"/v1.50/images/json?filters=%7Bnot-json", 400, "invalid filters parameter"},
		{"/v1.50/images/json?filters=%7B%22colour%22%3A%5B%22x%22%5D%7D", 400, "invalid filter 'colour'"},
		{"/v1.50/nosuch", 404, "page not found"},
	} {
		resp, err := d.request(t, "GET", c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.status)
			continue
		}
		if resp.Header.Get("Api-Version") != "1.57" || !strings.HasPrefix(resp.Header.Get("Server"), "Berth/") {
			t.Errorf("GET %s: headers %v", c.path, resp.Header)
		}
		if c.msg == "" {
			continue
		}
		var e struct{ Message string }
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Message, c.msg) {
			t.Errorf("GET %s: body %s, want message with %q", c.path, body, c.msg)
		}
	}
	// The docker CLI pinned below the minimum gets the daemon's words.
	if _, err := exec.LookPath(dockerCLI(t)); err == nil {
		r := run(t, []string{"DOCKER_HOST=" + d.Host, "DOCKER_API_VERSION=1.43"}, nil, dockerCLI(t), "images")
		if r.Code == 0 || !strings.Contains(r.Stderr, "Error response from daemon: client version 1.43 is too old") {
			t.Errorf("docker at API 1.43: exit %d, %s", r.Code, r.Stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	requireRoot(t)
	berth := filepath.Join(binDir(t), "berth")
	r := run(t, nil, nil, berth, "pull", "--foo")
	if r.Code != 125 || r.Stderr != "unknown flag: --foo\nSee 'berth pull --help'.\n" {
		t.Errorf("unknown flag: exit %d, %q", r.Code, r.Stderr)
	}
	r = run(t, nil, nil, berth, "pull")
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "\"berth pull\" requires exactly 1 argument.\nSee 'berth pull --help'.\n\nUsage:  berth pull [OPTIONS] NAME[:TAG|@DIGEST]\n") {
		t.Errorf("missing argument: exit %d, %q", r.Code, r.Stderr)
	}
	r = run(t, nil, nil, berth, "-H", "unix:///nonexistent/berthd.sock", "images")
	if r.Code != 1 || r.Stderr != "Cannot connect to berthd at unix:///nonexistent/berthd.sock. Is berthd running?\n" {
		t.Errorf("no daemon: exit %d, %q", r.Code, r.Stderr)
	}
	r = run(t, []string{"BERTH_HOST=tcp://127.0.0.1:1"}, nil, berth, "images")
	if r.Code != 1 || !strings.Contains(r.Stderr, "Cannot connect to berthd at tcp://127.0.0.1:1") {
		t.Errorf("BERTH_HOST not used: exit %d, %q", r.Code, r.Stderr)
	}
}

func TestOneDaemonPerExecRoot(t *testing.T) {
	d := startDaemon(t)
	for path, want := range map[string]os.FileMode{d.Socket: 0o660, d.ExecRoot: 0o711, d.DataRoot: 0o711} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %o", path, fi.Mode().Perm(), err, want)
		}
	}
	r := run(t, nil, nil, filepath.Join(d.bin, "berthd"), "--data-root", d.DataRoot+"2", "--exec-root", d.ExecRoot, "-H", "unix://"+d.ExecRoot+"/other.sock")
	if r.Code == 0 || !strings.Contains(r.Stderr, "is already running with exec-root "+d.ExecRoot) {
		t.Errorf("second berthd: exit %d, %s", r.Code, r.Stderr)
	}
	r = run(t, nil, nil, filepath.Join(d.bin, "berthd"), "--exec-root", d.ExecRoot+"x", "-H", "tcp://0.0.0.0:2375")
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not serve the API over TCP") {
		t.Errorf("berthd -H tcp: exit %d, %s", r.Code, r.Stderr)
	}
}
