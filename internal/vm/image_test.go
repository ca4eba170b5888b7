package vm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func testRecipe() Recipe {
	k := &Kernel{Package: "linux-image-6.1.0-56-amd64", Version: "6.1.192-2", Release: "6.1.0-56-amd64"}
	return NewRecipe(k, "http://deb.example/debian", "busybox-static_1.35.0-4+b3_amd64.deb")
}

func TestRecipeHash(t *testing.T) {
	a, b := testRecipe(), testRecipe()
	if a.Hash() != b.Hash() || len(a.Hash()) != 64 {
		t.Fatalf("equal recipes hash to %s and %s", a.Hash(), b.Hash())
	}
	for name, edit := range map[string]func(*Recipe){
		"kernel":   func(r *Recipe) { r.Kernel.Version = "6.1.193-1" },
		"packages": func(r *Recipe) { r.Packages = append(r.Packages, "strace") },
		"file":     func(r *Recipe) { r.Files[0].Data += "#" },
		"mode":     func(r *Recipe) { r.Files[0].Mode = 0o700 },
		"mask":     func(r *Recipe) { r.Masks = r.Masks[1:] },
		"init":     func(r *Recipe) { r.Init += "\n" },
		"busybox":  func(r *Recipe) { r.Busybox = "busybox-static_1.36.1-9_amd64.deb" },
		"format":   func(r *Recipe) { r.Format++ },
	} {
		r := testRecipe()
		edit(&r)
		if r.Hash() == a.Hash() {
			t.Errorf("changing the %s leaves the hash", name)
		}
	}
}

func TestNewRecipe(t *testing.T) {
	r := testRecipe()
	for _, p := range []string{"systemd-sysv", "dbus", "kmod"} {
		if !slices.Contains(r.Packages, p) {
			t.Errorf("packages %q lack %s", r.Packages, p)
		}
	}
	if r := NewRecipe(&Kernel{}, "m", "b", "strace"); !slices.Contains(r.Packages, "strace") {
		t.Errorf("extra package missing: %q", r.Packages)
	}
	var paths []string
	for _, f := range r.Files {
		paths = append(paths, f.Path)
	}
	for _, p := range []string{agentPath, "etc/systemd/system/berth-vm.target", "etc/systemd/system/berth-vm.service", "etc/machine-id"} {
		if !slices.Contains(paths, p) {
			t.Errorf("files %q lack %s", paths, p)
		}
	}
	if !slices.Contains(r.Masks, "systemd-udevd.service") {
		t.Error("udev is not masked")
	}
}

func TestCopyModules(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "modules")
	for _, f := range []string{"modules.order", "kernel/fs/ext4/ext4.ko", "kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/gpu/drm/drm.ko", "kernel/drivers/net/veth.ko", "kernel/drivers/net/e1000.ko"} {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyModules(src, dst, []string{"kernel/fs", "kernel/drivers/virtio", "kernel/drivers/net/veth.ko", "kernel/missing"}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{
		"modules.order": true, "kernel/fs/ext4/ext4.ko": true, "kernel/drivers/virtio/virtio.ko": true,
		"kernel/drivers/net/veth.ko": true, "kernel/drivers/gpu/drm/drm.ko": false, "kernel/drivers/net/e1000.ko": false,
	} {
		_, err := os.Stat(filepath.Join(dst, f))
		if got := err == nil; got != want {
			t.Errorf("%s copied: %v, want %v", f, got, want)
		}
	}
}
