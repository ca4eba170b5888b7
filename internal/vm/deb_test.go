package vm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseKernelDepends(t *testing.T) {
	control := []byte(`Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Description: Linux for 64-bit PCs (meta-package)
`)
	pkg, ver, err := parseKernelDepends(control)
	if err != nil || pkg != "linux-image-6.1.0-56-amd64" || ver != "6.1.192-2" {
		t.Errorf("parseKernelDepends = %q, %q, %v", pkg, ver, err)
	}
	pkg, ver, err = parseKernelDepends([]byte("Depends: kmod, linux-image-6.12.0-1-amd64-unsigned | linux-image-6.12.0-1-amd64\n"))
	if err != nil || pkg != "linux-image-6.12.0-1-amd64-unsigned" || ver != "" {
		t.Errorf("unversioned alternative: %q, %q, %v", pkg, ver, err)
	}
	if _, _, err := parseKernelDepends([]byte("Depends: libc6\n")); err == nil {
		t.Error("no kernel dependency: no error")
	}
}

func TestMirrorFromList(t *testing.T) {
	list := []byte(`# a comment
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
`)
	if got := mirrorFromList(list, "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("mirrorFromList = %q", got)
	}
	if got := mirrorFromList(list, "trixie"); got != "" {
		t.Errorf("other suite = %q", got)
	}
}

func TestDebianMirrorDeb822(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/apt/sources.list.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	sources := `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example/debian-security
Suites: bookworm-security
Components: main
`
	if err := os.WriteFile(filepath.Join(d, "debian.sources"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	other := "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n"
	if err := os.WriteFile(filepath.Join(d, "vendor.sources"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := DebianMirror(root, "bookworm")
	if err != nil || got != "http://deb.example/debian" {
		t.Errorf("DebianMirror = %q, %v", got, err)
	}
	if _, err := DebianMirror(root, "trixie"); err == nil {
		t.Error("no source for the suite: no error")
	}
}
