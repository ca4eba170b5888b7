package registry

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/fixture"
)

// get sends one request with optional basic credentials or bearer token.
func get(t *testing.T, u, user, pass, bearer string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPlainRegistryServesPushedImage(t *testing.T) {
	r := Start(t)
	desc := r.Push(t, fixture.ImageLayout(t), "berth/busybox:latest")
	resp, body := get(t, r.URL+"/v2/berth/busybox/manifests/latest", "", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest: %s: %s", resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != desc.Digest.String() {
		t.Fatalf("registry serves %s, pushed %s", got, desc.Digest)
	}
	if int64(len(body)) != desc.Size {
		t.Fatalf("manifest is %d bytes, pushed %d", len(body), desc.Size)
	}
}

func TestBasicAuthRegistry(t *testing.T) {
	r := Start(t, WithBasicAuth("alice", "s3cret"))
	r.Push(t, fixture.ImageLayout(t), "berth/busybox:latest")
	u := r.URL + "/v2/berth/busybox/manifests/latest"
	if resp, body := get(t, u, "", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET: %s: %s", resp.Status, body)
	}
	if resp, body := get(t, u, "alice", "wrong", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong password: %s: %s", resp.Status, body)
	}
	if resp, body := get(t, u, "alice", "s3cret", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with the password: %s: %s", resp.Status, body)
	}
}

func TestTokenAuthRegistry(t *testing.T) {
	r := Start(t, WithTokenAuth("bob", "hunter2"))
	r.Push(t, fixture.ImageLayout(t), "berth/busybox:latest")
	u := r.URL + "/v2/berth/busybox/manifests/latest"

	resp, body := get(t, u, "", "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %s: %s", resp.Status, body)
	}
	if c := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, "Bearer ") || !strings.Contains(c, r.TokenURL) {
		t.Fatalf("challenge %q does not name the token server %s", c, r.TokenURL)
	}

	token := func(user, pass, scope string) (int, string) {
		q := url.Values{"service": {tokenService}, "scope": {scope}}
		resp, body := get(t, r.TokenURL+"?"+q.Encode(), user, pass, "")
		var tok struct {
			Token string `json:"token"`
		}
		json.Unmarshal(body, &tok)
		return resp.StatusCode, tok.Token
	}
	pull := "repository:berth/busybox:pull"
	if code, _ := token("bob", "wrong", pull); code != http.StatusUnauthorized {
		t.Fatalf("token server answered wrong credentials with %d", code)
	}
	code, anon := token("", "", pull)
	if code != http.StatusOK {
		t.Fatalf("anonymous token: %d", code)
	}
	if resp, body := get(t, u, "", "", anon); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET with an anonymous token: %s: %s", resp.Status, body)
	}
	_, other := token("bob", "hunter2", "repository:berth/other:pull")
	if resp, body := get(t, u, "", "", other); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET with a token for another repository: %s: %s", resp.Status, body)
	}
	_, good := token("bob", "hunter2", pull)
	if resp, body := get(t, u, "", "", good); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with bob's token: %s: %s\n", resp.Status, body)
	}
	var sawPush bool
	for _, req := range r.TokenRequests() {
		if req.User == "bob" && req.Granted && strings.Contains(strings.Join(req.Scopes, " "), "push") {
			sawPush = true
		}
	}
	if !sawPush {
		t.Fatalf("the push did not go through the token server: %+v", r.TokenRequests())
	}
}
