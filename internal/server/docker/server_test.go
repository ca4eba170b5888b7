package docker

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/berth-project/berth/internal/image"
)

func TestMaxAPIVersionMatchesWireTypes(t *testing.T) {
	if MaxAPIVersion != client.MaxAPIVersion {
		t.Fatalf("MaxAPIVersion %s, but the moby modules in go.mod speak %s", MaxAPIVersion, client.MaxAPIVersion)
	}
}

func TestVersionNegotiation(t *testing.T) {
	_, ts := newTestServer(t, &fakeImages{})
	for _, c := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/version", 200, ""},
		{"/v1.44/version", 200, ""},
		{"/v1.50/version", 200, ""},
		{"/v" + MaxAPIVersion + "/version", 200, ""},
		{"/v1.43/version", 400, "client version 1.43 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"},
		{"/v1.9/version", 400, "client version 1.9 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is " + MaxAPIVersion},
		{"/v2.0/_ping", 400, "client version 2.0 is too new. Maximum supported API version is " + MaxAPIVersion},
		{"/v1..2/version", 400, `invalid API version "1..2" in the request path`},
		{"/v1.50/nothing", 404, "page not found"},
		{"/v1.50/containers/json", 404, "not implemented yet in berthd: GET /containers/json"},
	} {
		resp, body := get(t, ts.URL+c.path)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.path, resp.StatusCode, c.status, body)
			continue
		}
		for _, h := range []string{"Api-Version", "Ostype", "Server"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", c.path, h)
			}
		}
		if c.msg == "" {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", c.path, ct)
		}
		var e struct{ Message string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message != c.msg {
			t.Errorf("%s: body %s, want message %q", c.path, body, c.msg)
		}
	}
}

func TestPing(t *testing.T) {
	_, ts := newTestServer(t, &fakeImages{})
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		resp, body := do(t, m, ts.URL+"/_ping", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s /_ping: %d", m, resp.StatusCode)
		}
		want := map[string]string{"Api-Version": MaxAPIVersion, "Ostype": "linux", "Docker-Experimental": "false",
			"Builder-Version": "1", "Server": "Berth/test (linux)", "Cache-Control": "no-cache, no-store, must-revalidate"}
		for h, v := range want {
			if got := resp.Header.Get(h); got != v {
				t.Errorf("%s /_ping: %s = %q, want %q", m, h, got, v)
			}
		}
		if m == http.MethodGet && body != "OK" {
			t.Errorf("GET /_ping body %q", body)
		}
	}
}

func TestRealClientNegotiates(t *testing.T) {
	_, ts := newTestServer(t, &fakeImages{})
	c, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(ts.URL, "http://")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != MaxAPIVersion || v.MinAPIVersion != MinAPIVersion || c.ClientVersion() != MaxAPIVersion {
		t.Errorf("version %+v, client speaks %s", v, c.ClientVersion())
	}
	old, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(ts.URL, "http://")), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, err = old.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err == nil || !strings.Contains(err.Error(), "Error response from daemon: client version 1.41 is too old") {
		t.Errorf("old client: err = %v", err)
	}
}

func TestErrorStatusMapping(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("get x: %w", image.ErrNotFound), 404},
		{fmt.Errorf("pull x: %w", image.ErrNoPlatform), 404},
		{fmt.Errorf("tag: %w", image.ErrInvalid), 400},
		{fmt.Errorf("rmi: %w", image.ErrConflict), 409},
		{fmt.Errorf("login: %w", image.ErrUnauthorized), 401},
		{fmt.Errorf("pull: %w", image.ErrUnavailable), 500},
		{registryAuthFailure(fmt.Errorf("pull: %w", image.ErrUnauthorized)), 500},
		{registryAuthFailure(fmt.Errorf("pull: %w", image.ErrNotFound)), 404},
		{badRequest("invalid filter 'x'"), 400},
		{fmt.Errorf("disk on fire"), 500},
	} {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if msg := registryAuthFailure(fmt.Errorf("pull x: %w", image.ErrUnauthorized)).Error(); msg != "pull x: unauthorized" {
		t.Errorf("registryAuthFailure changed the message to %q", msg)
	}
}

func TestParseFilters(t *testing.T) {
	req := func(f string) *http.Request {
		r, _ := http.NewRequest("GET", "/images/json?filters="+url.QueryEscape(f), nil)
		return r
	}
	got, err := parseFilters(req(`{"dangling":{"true":true},"label":{"b":true,"a":true,"off":false}}`), listFilters...)
	if err != nil || fmt.Sprint(got) != "map[dangling:[true] label:[a b]]" {
		t.Errorf("map form: %v, %v", got, err)
	}
	got, err = parseFilters(req(`{"reference":["busybox","alpine"]}`), listFilters...)
	if err != nil || fmt.Sprint(got) != "map[reference:[alpine busybox]]" {
		t.Errorf("list form: %v, %v", got, err)
	}
	if _, err := parseFilters(req(`{"dangling":`), listFilters...); err == nil || statusOf(err) != 400 || !strings.Contains(err.Error(), "invalid filters parameter") {
		t.Errorf("malformed JSON: %v", err)
	}
	if _, err := parseFilters(req(`{"dangling":7}`), listFilters...); err == nil || !strings.Contains(err.Error(), `"dangling"`) {
		t.Errorf("bad value: %v", err)
	}
	if _, err := parseFilters(req(`{"colour":["blue"]}`), listFilters...); err == nil || err.Error() != "invalid filter 'colour'" {
		t.Errorf("bad key: %v", err)
	}
}

func TestBadRequestsNameTheParameter(t *testing.T) {
	_, ts := newTestServer(t, &fakeImages{})
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/images/json?filters=%7Bnope", "invalid filters parameter"},
		{"GET", "/images/json?filters=" + url.QueryEscape(`{"dangling":["maybe"]}`), "invalid filter 'dangling=maybe'"},
		{"POST", "/images/create", "fromImage or fromSrc parameter is required"},
		{"POST", "/images/create?fromImage=Busybox", `invalid fromImage parameter "Busybox"`},
		{"POST", "/images/create?fromImage=busybox&platform=linux//", `invalid platform parameter "linux//"`},
		{"POST", "/images/create?fromSrc=http://example.invalid/x.tar", "berthd imports only from the request body"},
		{"POST", "/images/x/tag", "repo parameter is required"},
		{"GET", "/events?since=yesterday", `invalid since parameter "yesterday"`},
		{"GET", "/events?filters=" + url.QueryEscape(`{"colour":["blue"]}`), "invalid filter 'colour'"},
		{"GET", "/system/df?type=boats", `invalid type parameter "boats"`},
	} {
		resp, body := do(t, c.method, ts.URL+c.path, nil)
		var e struct{ Message string }
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != 400 || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s %s: %d %s, want 400 with %q", c.method, c.path, resp.StatusCode, body, c.want)
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+"/images/create?fromImage=busybox", nil)
	req.Header.Set("X-Registry-Auth", "!!!")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("bad X-Registry-Auth: status %d", resp.StatusCode)
	}
}

func TestRegistryAuthHeader(t *testing.T) {
	for _, c := range []struct{ hdr, user, pass string }{
		{base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`)), "u", "p"},
		{base64.RawURLEncoding.EncodeToString([]byte(`{"username":"u","password":"p?>"}`)), "u", "p?>"},
		{base64.URLEncoding.EncodeToString([]byte(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("v:w")) + `"}`)), "v", "w"},
		{base64.URLEncoding.EncodeToString([]byte(`{}`)), "", ""},
	} {
		r, _ := http.NewRequest("POST", "/images/create", nil)
		r.Header.Set("X-Registry-Auth", c.hdr)
		a, err := registryAuth(r)
		if err != nil {
			t.Errorf("%s: %v", c.hdr, err)
			continue
		}
		if c.user == "" {
			if a != nil {
				t.Errorf("empty credential gave %+v", a)
			}
			continue
		}
		if a == nil || a.Username != c.user || a.Password != c.pass {
			t.Errorf("%s: got %+v", c.hdr, a)
		}
	}
}

func TestImageRoutes(t *testing.T) {
	for path, want := range map[string]string{
		"/images/busybox/json":                         "/images/{name}/json busybox",
		"/images/127.0.0.1:5000/a/b:v1/json":           "/images/{name}/json 127.0.0.1:5000/a/b:v1",
		"/images/127.0.0.1:5000/a/b:v1/push":           "/images/{name}/push 127.0.0.1:5000/a/b:v1",
		"/images/sha256:abc":                           "/images/{name} sha256:abc",
		"/images/busybox@sha256:abc/history":           "/images/{name}/history busybox@sha256:abc",
		"/images/docker.io/library/busybox:latest/tag": "/images/{name}/tag docker.io/library/busybox:latest",
	} {
		key, vars := imageRoute(path)
		if got := key + " " + vars["name"]; got != want {
			t.Errorf("%s -> %s, want %s", path, got, want)
		}
	}
}

// readStream returns the JSON messages of a streamed response.
func readStream(t *testing.T, body string) []jsonstream.Message {
	t.Helper()
	var out []jsonstream.Message
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m jsonstream.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestPullStream(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeImages{}
	_, ts := newTestServer(t, f)

	// A failure before any progress keeps its status.
	f.pull = func(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error) {
		return nil, fmt.Errorf("manifest for %s not found: %w", ref, image.ErrNotFound)
	}
	resp, body := do(t, "POST", ts.URL+"/v1.50/images/create?fromImage=nosuch&tag=latest", nil)
	if resp.StatusCode != 404 || !strings.Contains(body, "manifest for docker.io/library/nosuch:latest not found") {
		t.Errorf("early failure: %d %s", resp.StatusCode, body)
	}

	// A failure after progress ends the stream with errorDetail.
	f.pull = func(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error) {
		opts.Progress(image.Progress{ID: "abc123", Status: "Pulling fs layer"})
		return nil, fmt.Errorf("layer abc123: %w", image.ErrUnauthorized)
	}
	resp, body = do(t, "POST", ts.URL+"/images/create?fromImage=busybox&tag=latest", nil)
	msgs := readStream(t, body)
	if resp.StatusCode != 200 || len(msgs) != 2 || msgs[1].Error == nil || msgs[1].Error.Message != "layer abc123: unauthorized" {
		t.Errorf("late failure: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `"error":"layer abc123: unauthorized"`) {
		t.Errorf("late failure has no legacy error field: %s", body)
	}

	// Success: the store's lines go out in order, byte counts thinned
	// and attached only to the statuses clients draw bars for.
	img := testImage("docker.io/library/busybox:latest", created, 100)
	var gotRef string
	var gotPlatform string
	f.pull = func(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error) {
		gotRef = ref
		if opts.Platform != nil {
			gotPlatform = opts.Platform.OS + "/" + opts.Platform.Architecture
		}
		opts.Progress(image.Progress{ID: "latest", Status: "Pulling from library/busybox"})
		opts.Progress(image.Progress{ID: "abc123", Status: "Pulling fs layer"})
		opts.Progress(image.Progress{ID: "abc123", Status: "Downloading", Current: 50, Total: 100})
		opts.Progress(image.Progress{ID: "abc123", Status: "Downloading", Current: 60, Total: 100}) // thinned
		opts.Progress(image.Progress{ID: "abc123", Status: "Downloading", Current: 100, Total: 100})
		opts.Progress(image.Progress{ID: "abc123", Status: "Pull complete", Current: 100, Total: 100})
		opts.Progress(image.Progress{Status: "Digest: sha256:" + strings.Repeat("a", 64)})
		opts.Progress(image.Progress{Status: "Status: Downloaded newer image for busybox:latest"})
		f.images[ref] = img
		return img, nil
	}
	resp, body = do(t, "POST", ts.URL+"/images/create?fromImage=busybox&tag=latest&platform=linux/amd64", nil)
	msgs = readStream(t, body)
	var lines []string
	for _, m := range msgs {
		l := m.ID + "|" + m.Status
		if m.Progress != nil {
			l += fmt.Sprintf("|%d/%d", m.Progress.Current, m.Progress.Total)
		}
		lines = append(lines, l)
	}
	want := []string{
		"latest|Pulling from library/busybox|0/0",
		"abc123|Pulling fs layer|0/0",
		"abc123|Downloading|50/100",
		"abc123|Downloading|100/100",
		"abc123|Pull complete|0/0",
		"|Digest: sha256:" + strings.Repeat("a", 64),
		"|Status: Downloaded newer image for busybox:latest",
	}
	if resp.StatusCode != 200 || strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("pull stream:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if gotRef != "docker.io/library/busybox:latest" || gotPlatform != "linux/amd64" {
		t.Errorf("Pull got ref %q platform %q", gotRef, gotPlatform)
	}
}

func TestPushAuthFailureIsNot401(t *testing.T) {
	f := &fakeImages{}
	_, ts := newTestServer(t, f)
	f.images["127.0.0.1:5000/x:latest"] = testImage("127.0.0.1:5000/x:latest", time.Now(), 1)
	resp, body := do(t, "POST", ts.URL+"/images/127.0.0.1:5000/x/push?tag=latest", nil)
	msgs := readStream(t, body)
	if resp.StatusCode != 200 || len(msgs) != 2 || msgs[1].Error == nil || msgs[1].Error.Message != "push 127.0.0.1:5000/x:latest: unauthorized" {
		t.Errorf("push: %d %s", resp.StatusCode, body)
	}
}

func TestListAndInspect(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeImages{}
	_, ts := newTestServer(t, f)
	a := testImage("docker.io/library/busybox:latest", created, 100, 20)
	b := testImage("127.0.0.1:5000/x:v1", created.Add(time.Hour), 100)
	b.Layers[0].ChainID = a.Layers[0].ChainID
	f.images["docker.io/library/busybox:latest"] = a
	f.images["127.0.0.1:5000/x:v1"] = b
	resp, body := get(t, ts.URL+"/images/json?all=1&shared-size=1&filters="+url.QueryEscape(`{"label":{"a":true}}`))
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var list []struct {
		ID         string `json:"Id"`
		RepoTags   []string
		SharedSize int64
		Size       int64
		Created    int64
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].RepoTags[0] != "127.0.0.1:5000/x:v1" || list[1].RepoTags[0] != "busybox:latest" {
		t.Fatalf("list not newest first with familiar names: %s", body)
	}
	if list[1].SharedSize != 100 || list[1].Size != 120 || list[1].Created != created.Unix() {
		t.Errorf("busybox summary %+v", list[1])
	}
	if !f.lastList.All || fmt.Sprint(f.lastList.Filters) != "map[label:[a]]" {
		t.Errorf("List got %+v", f.lastList)
	}
	// Found by reference, an image lists only the names that matched.
	a.Names = append(a.Names, "docker.io/library/other:v2")
	_, body = get(t, ts.URL+"/images/json?filters="+url.QueryEscape(`{"reference":{"busybox":true}}`))
	if !strings.Contains(body, `"RepoTags":["busybox:latest"]`) || strings.Contains(body, "other:v2") {
		t.Errorf("reference filter did not narrow RepoTags: %s", body)
	}

	resp, body = get(t, ts.URL+"/images/docker.io/library/busybox:latest/json")
	var insp map[string]any
	if err := json.Unmarshal([]byte(body), &insp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("inspect: %d %s", resp.StatusCode, body)
	}
	if insp["Id"] != a.ID.String() || insp["Created"] != "2024-01-01T00:00:00Z" || insp["Os"] != "linux" ||
		insp["RootFS"].(map[string]any)["Type"] != "layers" || len(insp["RootFS"].(map[string]any)["Layers"].([]any)) != 2 ||
		insp["GraphDriver"].(map[string]any)["Name"] != "overlayfs" {
		t.Errorf("inspect body %s", body)
	}
	resp, body = get(t, ts.URL+"/images/nosuch/json")
	if resp.StatusCode != 404 || !strings.Contains(body, "No such image: docker.io/library/nosuch:latest") {
		t.Errorf("inspect missing: %d %s", resp.StatusCode, body)
	}
}

func TestPruneFilters(t *testing.T) {
	f := &fakeImages{}
	_, ts := newTestServer(t, f)
	resp, body := do(t, "POST", ts.URL+"/images/prune?filters="+url.QueryEscape(`{"dangling":{"false":true},"label":{"a=b":true}}`), nil)
	if resp.StatusCode != 200 || !f.pruned.all || fmt.Sprint(f.pruned.filters) != "map[label:[a=b]]" {
		t.Errorf("prune: %d %s, backend got all=%v %v", resp.StatusCode, body, f.pruned.all, f.pruned.filters)
	}
	resp, _ = do(t, "POST", ts.URL+"/images/prune?filters="+url.QueryEscape(`{"reference":["x"]}`), nil)
	if resp.StatusCode != 400 {
		t.Errorf("prune with a list-only filter: %d", resp.StatusCode)
	}
}

func TestEventsStream(t *testing.T) {
	created := time.Now()
	f := &fakeImages{}
	s, ts := newTestServer(t, f)
	f.images["docker.io/library/busybox:latest"] = testImage("docker.io/library/busybox:latest", created, 1)
	start := time.Now()
	resp, _ := do(t, "POST", ts.URL+"/images/busybox/tag?repo=busybox&tag=v1", nil)
	if resp.StatusCode != 201 {
		t.Fatalf("tag: %d", resp.StatusCode)
	}
	until := time.Now().Add(200 * time.Millisecond)
	q := fmt.Sprintf("since=%d.%09d&until=%d.%09d", start.Unix(), start.Nanosecond(), until.Unix(), until.Nanosecond())
	resp, body := get(t, ts.URL+"/v1.50/events?"+q)
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &ev); err != nil {
		t.Fatalf("events body %q: %v", body, err)
	}
	actor := ev["Actor"].(map[string]any)
	if ev["Type"] != "image" || ev["Action"] != "tag" || actor["Attributes"].(map[string]any)["name"] != "busybox:v1" ||
		ev["status"] != "tag" || ev["timeNano"] == nil || ev["scope"] != "local" {
		t.Errorf("tag event at API 1.50: %s", body)
	}
	_, body = get(t, ts.URL+"/events?"+q)
	if strings.Contains(body, `"status"`) {
		t.Errorf("API %s event has the legacy status field: %s", MaxAPIVersion, body)
	}
	// A live stream ends when the daemon stops.
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, ts.URL+"/events")
	}()
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("events stream outlived Stop")
	}
}

func TestDiskUsageShapes(t *testing.T) {
	f := &fakeImages{}
	_, ts := newTestServer(t, f)
	f.images["docker.io/library/busybox:latest"] = testImage("docker.io/library/busybox:latest", time.Now(), 1000)
	_, body := get(t, ts.URL+"/v1.50/system/df")
	var legacy map[string]any
	json.Unmarshal([]byte(body), &legacy)
	if legacy["LayersSize"] != float64(1000) || len(legacy["Images"].([]any)) != 1 || legacy["Containers"] == nil || legacy["ImageUsage"] != nil {
		t.Errorf("df at 1.50: %s", body)
	}
	_, body = get(t, ts.URL+"/system/df")
	var du system.DiskUsage
	if err := json.Unmarshal([]byte(body), &du); err != nil || du.ImageUsage == nil || du.ImageUsage.TotalSize != 1000 || du.ImageUsage.TotalCount != 1 || strings.Contains(body, "LayersSize") {
		t.Errorf("df at %s: %s", MaxAPIVersion, body)
	}
}

func TestInfo(t *testing.T) {
	f := &fakeImages{}
	_, ts := newTestServer(t, f)
	f.images["docker.io/library/busybox:latest"] = testImage("docker.io/library/busybox:latest", time.Now(), 1)
	resp, body := get(t, ts.URL+"/info")
	var info system.Info
	if err := json.Unmarshal([]byte(body), &info); err != nil || resp.StatusCode != 200 {
		t.Fatalf("info: %d %s", resp.StatusCode, body)
	}
	if info.Images != 1 || info.Driver != "overlayfs" || info.NCPU < 1 || info.MemTotal <= 0 || info.KernelVersion == "" ||
		info.OSType != "linux" || info.ServerVersion != "test" || info.CgroupVersion == "" || info.DockerRootDir == "" {
		t.Errorf("info: %s", body)
	}
}
