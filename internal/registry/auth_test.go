package registry_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	regtest "github.com/berth-project/berth/test/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeDockerConfig writes config.json into a new directory.
func writeDockerConfig(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func authsConfig(host, user, pass string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, enc)
}

// credentialHelper installs docker-credential-<name> on PATH for the test:
// a script answering "get" with user and pass, and recording the server
// it was asked about.
func credentialHelper(t *testing.T, name, user, pass string) (asked func() string) {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(bin, "asked")
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = get ] || exit 1
read server
printf '%%s' "$server" > %s
printf '{"ServerURL":"%%s","Username":%q,"Secret":%q}' "$server"
`, log, user, pass)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() string {
		b, _ := os.ReadFile(log)
		return string(b)
	}
}

// checkAuth resolves the busybox image and fetches its config with each
// way of giving credentials, right and wrong. Not parallel: it sets PATH
// and DOCKER_CONFIG.
func checkAuth(t *testing.T, r *regtest.Registry, pushed ocispec.Descriptor) {
	ctx := ctxTimeout(t, 30*time.Second)
	ref := mustRef(t, r.Host+"/"+busyboxRepo)
	right := &registry.Auth{Username: r.User, Password: r.Password}
	wrong := &registry.Auth{Username: r.User, Password: "not-" + r.Password}

	pull := func(t *testing.T, c *registry.Client, auth *registry.Auth) error {
		t.Helper()
		res, err := c.Resolve(ctx, ref, hostPlatform(), auth)
		if err != nil {
			return err
		}
		if res.Manifest.Digest != pushed.Digest {
			t.Fatalf("Resolve = %s, want %s", res.Manifest.Digest, pushed.Digest)
		}
		cfg := fetchAll(t, c, ctx, res.Ref, res.Config, 0, auth)
		if digest.FromBytes(cfg) != res.Config.Digest {
			t.Fatalf("config does not match its digest")
		}
		return nil
	}
	denied := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, registry.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
		want := "pull access denied for " + r.Host + "/" + busyboxRepo + ", repository does not exist or may require 'docker login'"
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("message %q, want it to start with %q", err, want)
		}
	}

	t.Run("explicit", func(t *testing.T) {
		if err := pull(t, newClient(t, registry.Config{}), right); err != nil {
			t.Fatalf("with the right credentials: %v", err)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		denied(t, pull(t, newClient(t, registry.Config{}), wrong))
	})
	t.Run("anonymous", func(t *testing.T) {
		denied(t, pull(t, newClient(t, registry.Config{}), nil))
	})
	t.Run("config.json", func(t *testing.T) {
		dir := writeDockerConfig(t, authsConfig(r.Host, r.User, r.Password))
		if err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil); err != nil {
			t.Fatalf("with config.json's credentials: %v", err)
		}
	})
	t.Run("config.json-url-key", func(t *testing.T) {
		// docker login writes some keys as URLs; they match by host.
		dir := writeDockerConfig(t, authsConfig("http://"+r.Host+"/v2/", r.User, r.Password))
		if err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil); err != nil {
			t.Fatalf("with config.json's credentials under a URL key: %v", err)
		}
	})
	t.Run("DOCKER_CONFIG", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", writeDockerConfig(t, authsConfig(r.Host, r.User, r.Password)))
		c, err := registry.New(registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pull(t, c, nil); err != nil {
			t.Fatalf("with $DOCKER_CONFIG's credentials: %v", err)
		}
	})
	t.Run("explicit-wins", func(t *testing.T) {
		dir := writeDockerConfig(t, authsConfig(r.Host, r.User, "stale"))
		if err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), right); err != nil {
			t.Fatalf("explicit credentials over config.json's stale ones: %v", err)
		}
		denied(t, pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil))
	})
	t.Run("credHelpers", func(t *testing.T) {
		asked := credentialHelper(t, "berthtest", r.User, r.Password)
		dir := writeDockerConfig(t, fmt.Sprintf(`{"credHelpers": {%q: "berthtest"}}`, r.Host))
		if err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil); err != nil {
			t.Fatalf("with a credential helper: %v", err)
		}
		if got := asked(); got != r.Host {
			t.Errorf("helper was asked about %q, want %q", got, r.Host)
		}
	})
	t.Run("credsStore", func(t *testing.T) {
		credentialHelper(t, "berthstore", r.User, r.Password)
		dir := writeDockerConfig(t, `{"credsStore": "berthstore"}`)
		if err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil); err != nil {
			t.Fatalf("with a credential store: %v", err)
		}
	})
	t.Run("missing-helper", func(t *testing.T) {
		dir := writeDockerConfig(t, fmt.Sprintf(`{"credHelpers": {%q: "berth-no-such-helper"}}`, r.Host))
		err := pull(t, newClient(t, registry.Config{DockerConfigDir: dir}), nil)
		if err == nil || !strings.Contains(err.Error(), "docker-credential-berth-no-such-helper") {
			t.Fatalf("with a missing helper: %v, want an error naming it", err)
		}
	})
}

func TestBasicAuth(t *testing.T) {
	r, pushed := seeded(t, regtest.WithBasicAuth("alice", "s3cret"))
	checkAuth(t, r, pushed)
}

func TestTokenAuth(t *testing.T) {
	r, pushed := seeded(t, regtest.WithTokenAuth("bob", "hunter2"))
	checkAuth(t, r, pushed)
	// Tokens were asked for this repository's pull scope only.
	var sawPull bool
	for _, req := range r.TokenRequests() {
		if req.User != "bob" {
			continue
		}
		for _, s := range req.Scopes {
			if s == "repository:"+busyboxRepo+":pull" {
				sawPull = true
			}
		}
	}
	if !sawPull {
		t.Errorf("no token for repository:%s:pull was asked for: %+v", busyboxRepo, r.TokenRequests())
	}
}
