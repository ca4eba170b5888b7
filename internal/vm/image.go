package vm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/dircache"
)

// recipeFormat changes whenever Build's steps change in a way the Recipe's
// fields do not show, so images built the old way are not reused.
const recipeFormat = 1

// A Recipe says everything a guest image is made of. Its hash names the
// image in the cache: an image is rebuilt exactly when its recipe changes.
type Recipe struct {
	Format int `json:"format"`
	// Suite and Mirror are debootstrap's: bookworm, http://deb.debian.org/debian.
	Suite  string `json:"suite"`
	Mirror string `json:"mirror"`
	// Packages are installed beside debootstrap's minbase.
	Packages []string `json:"packages"`
	// Kernel is the kernel whose modules the image carries and which the
	// initramfs is made for.
	Kernel Kernel `json:"kernel"`
	// Busybox is the busybox-static .deb (its file name, so its version)
	// that the initramfs runs.
	Busybox string `json:"busybox"`
	// Init is the initramfs's /init script; RootModules are the modules
	// it loads before mounting the root disk, LaterModules those it loads
	// meanwhile (see initramfs.go).
	Init         string   `json:"init"`
	RootModules  []string `json:"rootModules"`
	LaterModules []string `json:"laterModules"`
	// ModuleDirs are the subtrees of the kernel's modules copied into the
	// image (with depmod run there), so the guest's kernel can load the
	// filesystems, network devices and netfilter parts tests ask for. The
	// rest (graphics, sound, wireless, ...) is a few hundred MiB no guest
	// of berth needs.
	ModuleDirs []string `json:"moduleDirs"`
	// Files are written into the image after debootstrap.
	Files []File `json:"files"`
	// Masks are systemd units masked (linked to /dev/null) in the image.
	Masks []string `json:"masks"`
	// MaskGenerators masks every systemd generator of the image. systemd
	// runs each one on every boot before it starts any unit, about a tenth
	// of a second apiece under emulation, and the guest needs none: the
	// root is mounted by the initramfs, there are no gettys, no SysV
	// scripts, no encrypted disks.
	MaskGenerators bool `json:"maskGenerators"`
	// FreeMiB is the free space left on the root disk for what the guest
	// writes; the disk file is sparse and booted as a snapshot, so this
	// costs nothing until used.
	FreeMiB int `json:"freeMiB"`
}

// A File is one file of a Recipe.
type File struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	Data string      `json:"data"`
}

// Hash returns the hex sha256 of the recipe.
func (r *Recipe) Hash() string {
	// encoding/json writes struct fields in declaration order and slices
	// in their order: the same recipe always encodes the same way.
	data, err := json.Marshal(r)
	if err != nil {
		// A Recipe holds only strings, numbers and slices of them.
		return "unencodable-recipe"
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// NewRecipe returns the recipe of berth's test guest: Debian's minbase with
// systemd as PID 1, D-Bus (the systemd cgroup driver talks to systemd
// over it), kmod, and the tools berth's root tests call (ip, ps), booting
// into the guest agent (see guest.go). extra packages are added.
func NewRecipe(k *Kernel, mirror, busyboxDeb string, extra ...string) Recipe {
	pkgs := append([]string{"systemd-sysv", "dbus", "kmod", "iproute2", "procps"}, extra...)
	return Recipe{
		Format:       recipeFormat,
		Suite:        "bookworm",
		Mirror:       mirror,
		Packages:     pkgs,
		Kernel:       Kernel{Package: k.Package, Version: k.Version, Release: k.Release},
		Busybox:      busyboxDeb,
		Init:         initScript,
		RootModules:  rootModules,
		LaterModules: laterModules,
		ModuleDirs: []string{
			"kernel/arch", "kernel/block", "kernel/crypto", "kernel/fs", "kernel/lib",
			"kernel/mm", "kernel/net", "kernel/virt", "kernel/security",
			"kernel/drivers/block", "kernel/drivers/char", "kernel/drivers/md",
			"kernel/drivers/net/ipvlan", "kernel/drivers/net/vxlan", "kernel/drivers/net/wireguard",
			"kernel/drivers/net/dummy.ko", "kernel/drivers/net/veth.ko", "kernel/drivers/net/macvlan.ko",
			"kernel/drivers/net/tun.ko", "kernel/drivers/net/vrf.ko", "kernel/drivers/net/bonding",
			"kernel/drivers/virtio",
		},
		Files:          guestFiles(),
		Masks:          guestMasks,
		MaskGenerators: true,
		FreeMiB:        2048,
	}
}

// An Image is a built guest: a root disk and the initramfs that mounts it,
// for Kernel. Its cache directory holds
//
//	rootfs.ext4   the root filesystem, ext4 without a journal (booted as a snapshot)
//	initrd.cpio   the initramfs
//	recipe.json   the Recipe it was built from
type Image struct {
	Dir    string
	Recipe Recipe
	Kernel *Kernel
}

// Disk returns the path of the root disk image.
func (i *Image) Disk() string { return filepath.Join(i.Dir, "rootfs.ext4") }

// Initrd returns the path of the initramfs.
func (i *Image) Initrd() string { return filepath.Join(i.Dir, "initrd.cpio") }

// Image returns the image of recipe r for kernel k, building it when the
// cache has none.
func (c *Cache) Image(ctx context.Context, r Recipe, k *Kernel) (*Image, error) {
	hash := r.Hash()
	final := filepath.Join(c.Dir, "image-"+hash[:12])
	if err := c.buildImage(ctx, final, r, k); err != nil {
		return nil, err
	}
	dircache.Touch(final)
	return &Image{Dir: final, Recipe: r, Kernel: k}, nil
}

// buildImage builds the image of r at final unless it exists.
func (c *Cache) buildImage(ctx context.Context, final string, r Recipe, k *Kernel) error {
	complete := func() bool {
		_, err := os.Stat(filepath.Join(final, "recipe.json"))
		return err == nil
	}
	if complete() {
		return nil
	}
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if complete() {
		// Built by the run that held the lock before us.
		return nil
	}
	c.logf("image: building %s (debootstrap of %s from %s; a few minutes)", filepath.Base(final), r.Suite, r.Mirror)
	err = dircache.Publish(final, func(dir string) error {
		return c.build(ctx, dir, r, k)
	})
	if err != nil {
		return fmt.Errorf("build guest image: %w", err)
	}
	dircache.Prune(c.Dir, "image-*", final)
	return nil
}

// build fills dir with the image of r.
func (c *Cache) build(ctx context.Context, dir string, r Recipe, k *Kernel) error {
	root := filepath.Join(dir, "rootfs")
	args := []string{"--variant=minbase", "--components=main"}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	args = append(args, r.Suite, root, r.Mirror)
	if _, err := run(ctx, "", "debootstrap", args...); err != nil {
		if log, rerr := os.ReadFile(filepath.Join(root, "debootstrap", "debootstrap.log")); rerr == nil {
			return fmt.Errorf("%w\ndebootstrap.log (end):\n%s", err, tail(string(log), 40))
		}
		return err
	}
	c.logf("image: debootstrap done; adding modules, files, disk")
	modDst := filepath.Join(root, "lib", "modules", k.Release)
	if err := copyModules(k.Modules(), modDst, r.ModuleDirs); err != nil {
		return err
	}
	if _, err := run(ctx, "", "chroot", root, "depmod", "-a", k.Release); err != nil {
		return fmt.Errorf("depmod in the image: %w", err)
	}
	for _, f := range r.Files {
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write image file %s: %w", f.Path, err)
		}
		if err := os.WriteFile(p, []byte(f.Data), f.Mode); err != nil {
			return fmt.Errorf("write image file %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			return fmt.Errorf("write image file %s: %w", f.Path, err)
		}
	}
	for _, u := range r.Masks {
		p := filepath.Join(root, "etc", "systemd", "system", u)
		_ = os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return fmt.Errorf("mask %s: %w", u, err)
		}
	}
	if r.MaskGenerators {
		if err := maskGenerators(root); err != nil {
			return err
		}
	}
	// Downloaded packages and package lists are of no use in a guest that
	// never runs apt: leave them out of the disk.
	for _, g := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*", "var/cache/apt/*.bin"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
	if err := makeDisk(ctx, root, filepath.Join(dir, "rootfs.ext4"), r.FreeMiB); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("remove image rootfs: %w", err)
	}
	bb, err := c.Deb(ctx, "busybox-static")
	if err != nil {
		return err
	}
	if filepath.Base(bb) != r.Busybox {
		return fmt.Errorf("busybox-static: recipe wants %s, cache has %s", r.Busybox, filepath.Base(bb))
	}
	busybox, err := debFile(ctx, bb, "bin/busybox")
	if err != nil {
		return err
	}
	if err := writeInitramfs(filepath.Join(dir, "initrd.cpio"), k, busybox, r.Init, r.RootModules, r.LaterModules); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("encode recipe: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "recipe.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write recipe: %w", err)
	}
	return nil
}

// maskGenerators links each generator of the image's systemd to /dev/null
// under /etc, which systemd.generator(7) defines as masking it.
func maskGenerators(root string) error {
	etc := filepath.Join(root, "etc", "systemd", "system-generators")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return fmt.Errorf("mask generators: %w", err)
	}
	for _, dir := range []string{"lib/systemd/system-generators", "usr/lib/systemd/system-generators"} {
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			p := filepath.Join(etc, e.Name())
			if _, err := os.Lstat(p); err == nil {
				continue
			}
			if err := os.Symlink("/dev/null", p); err != nil {
				return fmt.Errorf("mask generator %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// makeDisk makes an ext4 filesystem image of the tree root at disk, with
// freeMiB to spare. There is no journal: the disk is booted as a snapshot
// that qemu discards, so there is nothing to recover after a crash, and
// journal writes cost time under emulation.
func makeDisk(ctx context.Context, root, disk string, freeMiB int) error {
	var used int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		// Round each entry up to a block, and count an inode's worth.
		used += (info.Size()+4095)/4096*4096 + 256
		return nil
	})
	if err != nil {
		return fmt.Errorf("size image rootfs: %w", err)
	}
	size := used + used/5 + int64(freeMiB)<<20
	f, err := os.Create(disk)
	if err != nil {
		return fmt.Errorf("create disk image: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size disk image: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create disk image: %w", err)
	}
	if _, err := run(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "berth-root", "-O", "^has_journal",
		"-E", "root_owner=0:0", "-d", root, disk); err != nil {
		return fmt.Errorf("make root filesystem: %w", err)
	}
	return nil
}

// copyModules links (or copies, across filesystems) the parts of the module
// tree src that dirs name, and its top-level files (modules.order,
// modules.builtin, ...), into dst.
func copyModules(src, dst string, dirs []string) error {
	top, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy modules: %w", err)
	}
	var roots []string
	for _, e := range top {
		if !e.IsDir() {
			roots = append(roots, e.Name())
		}
	}
	roots = append(roots, dirs...)
	for _, rel := range roots {
		base := filepath.Join(src, rel)
		if _, err := os.Stat(base); err != nil {
			// A directory this kernel does not have.
			continue
		}
		err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			target := filepath.Join(dst, r)
			if d.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Link(path, target); err == nil {
				return nil
			}
			return copyFile(path, target)
		})
		if err != nil {
			return fmt.Errorf("copy modules: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
