package vm

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/dircache"
)

// KernelMeta is the Debian metapackage whose dependency names the kernel
// guests boot: the distribution's current stock kernel.
const KernelMeta = "linux-image-amd64"

// A Kernel is a Debian kernel package unpacked in the cache:
//
//	vmlinuz      the bzImage, for machines that boot through firmware
//	vmlinux      the same kernel uncompressed, for microvm's PVH entry
//	config       the kernel's build configuration
//	modules/     its lib/modules/<release> tree
//	kernel.json  this struct
type Kernel struct {
	// Package and Version name the .deb: linux-image-6.1.0-56-amd64, 6.1.192-2.
	Package string `json:"package"`
	Version string `json:"version"`
	// Release is what uname -r prints in the guest: 6.1.0-56-amd64.
	Release string `json:"release"`
	// Dir is the kernel's cache directory.
	Dir string `json:"-"`
}

// Vmlinuz returns the path of the compressed kernel.
func (k *Kernel) Vmlinuz() string { return filepath.Join(k.Dir, "vmlinuz") }

// Vmlinux returns the path of the uncompressed kernel.
func (k *Kernel) Vmlinux() string { return filepath.Join(k.Dir, "vmlinux") }

// Modules returns the path of the kernel's module tree.
func (k *Kernel) Modules() string { return filepath.Join(k.Dir, "modules") }

// Kernel returns the cached kernel that KernelMeta currently depends on,
// downloading and unpacking it first when needed. When apt cannot say
// which kernel that is (no package lists yet), the newest cached kernel
// serves.
func (c *Cache) Kernel(ctx context.Context) (*Kernel, error) {
	pkg, version, err := resolveKernelPackage(ctx, KernelMeta)
	if err != nil {
		if k, cerr := c.newestKernel(); cerr == nil {
			c.logf("kernel: %v; using the cached %s %s", err, k.Package, k.Version)
			return k, nil
		}
		return nil, err
	}
	return c.kernel(ctx, pkg, version)
}

func (c *Cache) kernelRoot() string { return filepath.Join(c.Dir, "kernel") }

// kernel returns package pkg at version from the cache, unpacking it into
// a temporary directory renamed into place so a half-built kernel is never
// seen.
func (c *Cache) kernel(ctx context.Context, pkg, version string) (*Kernel, error) {
	name := pkg + "_" + strings.ReplaceAll(version, ":", "%3a")
	final := filepath.Join(c.kernelRoot(), name)
	if k, err := loadKernel(final); err == nil {
		dircache.Touch(final)
		return k, nil
	}
	unlock, err := c.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if k, err := loadKernel(final); err == nil {
		// Built by the run that held the lock before us.
		return k, nil
	}
	c.logf("kernel: fetching %s %s", pkg, version)
	err = dircache.Publish(final, func(dir string) error {
		return unpackKernel(ctx, dir, pkg, version)
	})
	if err != nil {
		return nil, fmt.Errorf("prepare kernel %s: %w", name, err)
	}
	dircache.Prune(c.kernelRoot(), "linux-image-*", final)
	return loadKernel(final)
}

// unpackKernel fills dir as Kernel describes.
func unpackKernel(ctx context.Context, dir, pkg, version string) error {
	spec := pkg
	if version != "" {
		spec += "=" + version
	}
	deb, err := aptDownload(ctx, dir, spec)
	if err != nil {
		return err
	}
	x := filepath.Join(dir, "x")
	if _, err := run(ctx, "", "dpkg-deb", "-x", deb, x); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	images, _ := filepath.Glob(filepath.Join(x, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return fmt.Errorf("unpack %s: want one boot/vmlinuz-*, found %d", filepath.Base(deb), len(images))
	}
	k := Kernel{Package: pkg, Version: version, Release: strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")}
	moves := [][2]string{
		{images[0], "vmlinuz"},
		{filepath.Join(x, "boot", "config-"+k.Release), "config"},
		{filepath.Join(x, "lib", "modules", k.Release), "modules"},
	}
	for _, m := range moves {
		if err := os.Rename(m[0], filepath.Join(dir, m[1])); err != nil {
			return fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
		}
	}
	if err := os.RemoveAll(x); err != nil {
		return fmt.Errorf("clean up kernel unpack: %w", err)
	}
	if err := os.Remove(deb); err != nil {
		return fmt.Errorf("clean up kernel unpack: %w", err)
	}
	if err := ExtractVmlinux(filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "vmlinux")); err != nil {
		return err
	}
	data, err := json.MarshalIndent(k, "", "\t")
	if err != nil {
		return fmt.Errorf("encode kernel.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write kernel.json: %w", err)
	}
	return nil
}

func loadKernel(dir string) (*Kernel, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return nil, fmt.Errorf("load kernel: %w", err)
	}
	var k Kernel
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("load kernel %s: %w", dir, err)
	}
	k.Dir = dir
	return &k, nil
}

// newestKernel returns the most recently used cached kernel.
func (c *Cache) newestKernel() (*Kernel, error) {
	dirs, _ := filepath.Glob(filepath.Join(c.kernelRoot(), "linux-image-*"))
	type cand struct {
		k     *Kernel
		mtime int64
	}
	var cands []cand
	for _, d := range dirs {
		k, err := loadKernel(d)
		fi, serr := os.Stat(d)
		if err == nil && serr == nil {
			cands = append(cands, cand{k, fi.ModTime().UnixNano()})
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("no cached kernel in %s", c.kernelRoot())
	}
	best := slices.MaxFunc(cands, func(a, b cand) int { return cmp.Compare(a.mtime, b.mtime) })
	return best.k, nil
}
