package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/registry"
)

// Bad input to the image commands: each is a clear error from berth and
// the docker CLI, and docker's status code from the API.
func TestImageBadInput(t *testing.T) {
	d := startDaemon(t)
	reg := registry.Start(t, registry.WithBasicAuth("alice", "s3cret"))
	reg.Push(t, fixture.ImageLayout(t), "private/busybox:latest")
	private := reg.Host + "/private/busybox:latest"
	// The same registry for the anonymous cases: a second, open one.
	open := registry.Start(t)
	open.Push(t, fixture.ImageLayout(t), "public/busybox:latest")

	for _, c := range []struct {
		name   string
		args   []string
		stderr string // berth's and docker's
	}{
		{"unknown image", []string{"image", "inspect", "nosuch:v1"}, "No such image: nosuch:v1"},
		{"rmi unknown", []string{"rmi", "nosuch:v1"}, "No such image: nosuch:v1"},
		{"malformed reference", []string{"pull", "Not/A Reference"}, "invalid reference format"},
		{"unreachable registry", []string{"pull", "127.0.0.1:1/x/y:z"}, "connection refused"},
		{"no credentials", []string{"pull", private}, "pull access denied for " + reg.Host + "/private/busybox"},
		{"no matching platform", []string{"pull", "--platform", "linux/s390x", open.Host + "/public/busybox"}, "does not match the specified platform (linux/s390x)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cli := range []string{"berth", "docker"} {
				var r result
				if cli == "berth" {
					r = d.berth(t, c.args...)
				} else {
					r = d.docker(t, c.args...)
				}
				// (A malformed reference is refused by the CLI itself, as
				// docker's; everything else comes back from the daemon.)
				if r.Code != 1 || !strings.Contains(r.Stderr, c.stderr) {
					t.Errorf("%s %v: exit %d, stderr %q; want exit 1 and %q", cli, c.args, r.Code, r.Stderr, c.stderr)
				}
			}
		})
	}

	status := func(method, path string, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://berthd"+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := d.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	auth := func(user, pass string) map[string]string {
		data, _ := json.Marshal(map[string]string{"username": user, "password": pass, "serveraddress": reg.Host})
		return map[string]string{"X-Registry-Auth": base64.URLEncoding.EncodeToString(data)}
	}
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		want               int
		body               string
	}{
		{"inspect unknown", "GET", "/v1.47/images/nosuch:v1/json", nil, 404, "No such image: nosuch:v1"},
		{"delete unknown", "DELETE", "/v1.47/images/nosuch:v1", nil, 404, "No such image"},
		{"malformed reference", "POST", "/v1.47/images/create?fromImage=Not%20A%20Ref&tag=latest", nil, 400, "invalid reference format"},
		{"unknown manifest", "POST", "/v1.47/images/create?fromImage=" + reg.Host + "/private/nosuch&tag=latest", auth("alice", "s3cret"), 404, "not found"},
		{"wrong credentials", "POST", "/v1.47/images/create?fromImage=" + reg.Host + "/private/busybox&tag=latest", auth("alice", "wrong"), 500, "unauthorized"},
		{"no matching platform", "POST", "/v1.47/images/create?fromImage=" + reg.Host + "/private/busybox&tag=latest&platform=linux/s390x", auth("alice", "s3cret"), 404, "linux/s390x"},
		{"right credentials", "POST", "/v1.47/images/create?fromImage=" + reg.Host + "/private/busybox&tag=latest", auth("alice", "s3cret"), 200, "Downloaded newer image"},
		{"bad platform value", "POST", "/v1.47/images/create?fromImage=" + reg.Host + "/private/busybox&tag=latest&platform=linux/", nil, 400, "platform"},
	} {
		code, body := status(c.method, c.path, c.header)
		if code != c.want || !strings.Contains(body, c.body) {
			t.Errorf("%s: %s %s = %d %q, want %d and %q", c.name, c.method, c.path, code, body, c.want, c.body)
		}
	}
}
