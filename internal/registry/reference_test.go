package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/registry"
)

const hexDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in                          string
		str, familiar, domain, path string
		name, tag, digest           string
	}{
		{in: "busybox", str: "docker.io/library/busybox:latest", familiar: "busybox:latest",
			domain: "docker.io", path: "library/busybox", name: "docker.io/library/busybox", tag: "latest"},
		{in: "busybox:1.36", str: "docker.io/library/busybox:1.36", familiar: "busybox:1.36",
			domain: "docker.io", path: "library/busybox", name: "docker.io/library/busybox", tag: "1.36"},
		{in: "user/app", str: "docker.io/user/app:latest", familiar: "user/app:latest",
			domain: "docker.io", path: "user/app", name: "docker.io/user/app", tag: "latest"},
		{in: "docker.io/library/busybox:latest", str: "docker.io/library/busybox:latest", familiar: "busybox:latest",
			domain: "docker.io", path: "library/busybox", name: "docker.io/library/busybox", tag: "latest"},
		{in: "library/busybox", str: "docker.io/library/busybox:latest", familiar: "busybox:latest",
			domain: "docker.io", path: "library/busybox", name: "docker.io/library/busybox", tag: "latest"},
		{in: "docker.io/library/a/b", str: "docker.io/library/a/b:latest", familiar: "library/a/b:latest",
			domain: "docker.io", path: "library/a/b", name: "docker.io/library/a/b", tag: "latest"},
		{in: "127.0.0.1:5000/x@" + hexDigest, str: "127.0.0.1:5000/x@" + hexDigest, familiar: "127.0.0.1:5000/x@" + hexDigest,
			domain: "127.0.0.1:5000", path: "x", name: "127.0.0.1:5000/x", digest: hexDigest},
		{in: "busybox:1.36@" + hexDigest, str: "docker.io/library/busybox:1.36@" + hexDigest, familiar: "busybox:1.36@" + hexDigest,
			domain: "docker.io", path: "library/busybox", name: "docker.io/library/busybox", tag: "1.36", digest: hexDigest},
		{in: "localhost/app:v1", str: "localhost/app:v1", familiar: "localhost/app:v1",
			domain: "localhost", path: "app", name: "localhost/app", tag: "v1"},
		{in: "localhost:5000/a/b/c", str: "localhost:5000/a/b/c:latest", familiar: "localhost:5000/a/b/c:latest",
			domain: "localhost:5000", path: "a/b/c", name: "localhost:5000/a/b/c", tag: "latest"},
		{in: "registry.example.com/team/app:2", str: "registry.example.com/team/app:2", familiar: "registry.example.com/team/app:2",
			domain: "registry.example.com", path: "team/app", name: "registry.example.com/team/app", tag: "2"},
		{in: "[::1]:5000/app", str: "[::1]:5000/app:latest", familiar: "[::1]:5000/app:latest",
			domain: "[::1]:5000", path: "app", name: "[::1]:5000/app", tag: "latest"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := registry.ParseReference(tc.in)
			if err != nil {
				t.Fatalf("ParseReference: %v", err)
			}
			got := []string{r.String(), r.Familiar(), r.Domain(), r.Path(), r.Name(), r.Tag(), r.Digest().String()}
			want := []string{tc.str, tc.familiar, tc.domain, tc.path, tc.name, tc.tag, tc.digest}
			names := []string{"String", "Familiar", "Domain", "Path", "Name", "Tag", "Digest"}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s() = %q, want %q", names[i], got[i], want[i])
				}
			}
			// The normalised form parses to the same reference.
			again, err := registry.ParseReference(r.String())
			if err != nil || again != r {
				t.Errorf("ParseReference(%q) = %v, %v; want %v", r.String(), again, err, r)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Busybox", "must be lowercase"},
		{"docker.io/Library/busybox", "must be lowercase"},
		{"", "invalid reference format"},
		{"busybox:", "invalid reference format"},
		{"busybox:tag with space", "invalid reference format"},
		{"busybox@sha256:1234", "invalid"},
		{"busybox@md5:0123456789abcdef0123456789abcdef", "unsupported digest algorithm"},
		{"-bad/name", "invalid reference format"},
		{"a//b", "invalid reference format"},
		{strings.Repeat("0123456789abcdef", 4), "cannot specify 64-byte hexadecimal strings"},
		{"busybox:" + strings.Repeat("t", 129), "invalid reference format"},
		{strings.Repeat("a/", 600) + "a", "longer than 1024 bytes"},
	} {
		name := tc.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(name, func(t *testing.T) {
			r, err := registry.ParseReference(tc.in)
			if err == nil {
				t.Fatalf("ParseReference(%q) = %v, want an error", tc.in, r)
			}
			if !errors.Is(err, registry.ErrInvalidReference) {
				t.Errorf("error %v does not wrap ErrInvalidReference", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			quoted := tc.in
			if len(quoted) > 64 {
				quoted = quoted[:64]
			}
			if !strings.Contains(err.Error(), quoted) {
				t.Errorf("error %q does not name the input", err)
			}
		})
	}
}

func TestReferenceWithDigestAndTag(t *testing.T) {
	t.Parallel()
	r, err := registry.ParseReference("busybox")
	if err != nil {
		t.Fatal(err)
	}
	pinned := r.WithDigest(hexDigest)
	if got, want := pinned.String(), "docker.io/library/busybox:latest@"+hexDigest; got != want {
		t.Errorf("WithDigest: %q, want %q", got, want)
	}
	if got, want := pinned.WithTag("1").String(), "docker.io/library/busybox:1"; got != want {
		t.Errorf("WithTag: %q, want %q", got, want)
	}
	if got := pinned.FamiliarName(); got != "busybox" {
		t.Errorf("FamiliarName: %q", got)
	}
}
