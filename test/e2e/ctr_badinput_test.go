package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input to the container commands, through the CLIs and the API:
// each a clear error with docker's exit or status code, and nothing left
// behind (no container, no container directory, no snapshot, no mount).
func TestCtrBadInput(t *testing.T) {
	ref := seed(t)
	d := startDaemon(t)
	d.removeAllContainers(t)
	d.mustBerth(t, "pull", "-q", ref)
	missing := filepath.Join(scratchDir(t), "no-such-dir")
	d.mustBerth(t, "create", "--name", "taken", ref, "true")
	d.mustBerth(t, "run", "--network", "none", "-d", "--name", "busy", ref, "sleep", "1000")
	snaps := snapshotCount(t, d)
	ctrDirs := func() int {
		ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "containers"))
		return len(ents)
	}
	dirs := ctrDirs()
	mounts := func() int {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Count(string(mi), d.ExecRoot+"/")
	}
	mnt := mounts()
	unknown := strings.Replace(ref, "/e2e/busybox:latest", "/e2e/nosuch:v1", 1)

	bothCLIs(t, d, func(t *testing.T, c cliRunner) {
		// docker run exits 125 when the container cannot be made or
		// started, docker create 1 (berth create: 125, a difference
		// the CLI's owner knows of).
		createCode := 1
		if c.name == "berth" {
			createCode = 125
		}
		for _, tc := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"unknown image", []string{"run", unknown, "true"}, 125, "not found"},
			{"unknown image, no pull", []string{"create", "--pull", "never", "nosuch:v1"}, createCode, "No such image: nosuch:v1"},
			// (Each CLI words a bad flag value its own way.)
			{"bad memory", []string{"run", "--memory", "abc", ref, "true"}, 125, `"abc" for `},
			{"bad restart policy", []string{"run", "--restart", "bogus", ref, "true"}, 125, "bogus"},
			{"memory below the minimum", []string{"run", "--memory", "1m", ref, "true"}, 125, "inimum memory limit allowed is 6MB"},
			{"name conflict", []string{"create", "--name", "taken", ref, "true"}, createCode, `Conflict. The container name "/taken" is already in use`},
			{"rm running", []string{"rm", "busy"}, 1, "stop the container before removing or force remove"},
			{"bind of a missing path", []string{"run", "--mount", "type=bind,src=" + missing + ",dst=/x", ref, "true"}, 125,
				`invalid mount config for type "bind": bind source path does not exist: ` + missing},
		} {
			r := c.run(t, "", tc.args...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) {
				t.Errorf("%s: %s %v: exit %d, stderr %q; want exit %d and %q", tc.name, c.name, tc.args, r.Code, r.Stderr, tc.code, tc.msg)
			}
		}
	})

	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"unknown image", "POST", "/containers/create", `{"Image":"nosuch:v1"}`, 404, "No such image: nosuch:v1"},
		{"malformed JSON", "POST", "/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"bad memory", "POST", "/containers/create", `{"Image":"` + ref + `","HostConfig":{"Memory":1024}}`, 400, "minimum memory limit allowed is 6MB"},
		{"bad restart policy", "POST", "/containers/create", `{"Image":"` + ref + `","HostConfig":{"RestartPolicy":{"Name":"bogus"}}}`, 400, "bogus"},
		{"name conflict", "POST", "/containers/create?name=taken", `{"Image":"` + ref + `"}`, 409, "is already in use"},
		{"bind of a missing path", "POST", "/containers/create", `{"Image":"` + ref + `","HostConfig":{"Mounts":[{"Type":"bind","Source":"` + missing + `","Target":"/x"}]}}`, 400, "bind source path does not exist"},
		{"rm running", "DELETE", "/containers/busy", "", 409, "stop the container before removing"},
		{"unknown container", "POST", "/containers/nosuch/start", "", 404, "No such container: nosuch"},
		{"malformed exec", "POST", "/containers/busy/exec", `{"Cmd":`, 400, "invalid JSON"},
		{"malformed update", "POST", "/containers/busy/update", `[1,2]`, 400, "invalid JSON"},
		{"bad update", "POST", "/containers/busy/update", `{"BlkioWeight":1}`, 400, "blkio weight"},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, err := d.request(t, tc.method, "/v1.47"+tc.path, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s: %s %s = %d %s; want %d and %q", tc.name, tc.method, tc.path, resp.StatusCode, b, tc.want, tc.msg)
		}
	}

	if ids := strings.Fields(d.mustBerth(t, "ps", "-aq")); len(ids) != 2 {
		t.Errorf("containers after the bad requests: %v, want taken and busy", ids)
	}
	if n := ctrDirs(); n != dirs {
		t.Errorf("%d container directories after the bad requests, %d before", n, dirs)
	}
	if n := snapshotCount(t, d); n != snaps {
		t.Errorf("%d snapshots after the bad requests, %d before", n, snaps)
	}
	if n := mounts(); n != mnt {
		t.Errorf("%d mounts under the exec root after the bad requests, %d before", n, mnt)
	}
	if out := d.mustBerth(t, "inspect", "-f", "{{.State.Running}}", "busy"); out != "true\n" {
		t.Errorf("busy after the refused rm: %q", out)
	}
}
