package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The drivers the initramfs loads. Debian builds all of them as modules.
// The guest runs without udev (it costs seconds under emulation), so
// nothing would load device drivers later: everything a device needs is
// loaded here. Dependencies are added from each module's .modinfo.
var (
	// rootModules mount the root disk: the virtio transports (mmio for
	// microvm, pci for pc), the disk and its filesystem. crc32c_generic
	// is listed because ext4 asks for "crc32c" only through a soft
	// dependency and the crypto API, which cannot reach modprobe this
	// early.
	rootModules = []string{"virtio_mmio", "virtio_pci", "virtio_blk", "crc32c_generic", "ext4"}
	// laterModules are loaded in the background while the root disk is
	// mounted (a few tenths of a second saved under emulation): the
	// output channel, 9p for shared directories, and autofs4, which
	// systemd otherwise loads from the disk as it starts.
	laterModules = []string{"virtio_console", "9pnet_virtio", "9p", "autofs4"}
)

// initScript is the initramfs's /init, run by busybox's sh. It mounts the
// root disk read-write (the disk is a throw-away snapshot, so there is
// nothing to fsck or protect) and hands over to systemd. Any failure powers
// the machine off with the reason on the console, so the host sees a guest
// that ended, not one that hangs.
const initScript = `#!/bin/sh
export PATH=/bin
fail() {
	echo "berth-vm initramfs: $*" >/dev/console
	poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
load() {
	while read -r m; do
		insmod "/lib/modules/$m" || fail "insmod $m failed"
	done <"$1"
}
load /lib/modules/order
load /lib/modules/order.later &
later=$!
# Device probing may finish after insmod returns: wait up to 10 s.
i=0
while [ ! -b /dev/vda ]; do
	[ $i -lt 200 ] || fail "no root disk /dev/vda"
	sleep 0.05
	i=$((i + 1))
done
mount -t ext4 -o rw,noatime /dev/vda /newroot || fail "mount /dev/vda"
wait $later
mount --move /dev /newroot/dev || fail "move /dev"
umount /sys /proc
exec switch_root /newroot /lib/systemd/systemd
`

// writeInitramfs writes to dst an initramfs of busybox, the init script and
// the modules of k that rootMods and laterMods need, in two load orders
// (order, order.later) for the init script.
func writeInitramfs(dst string, k *Kernel, busybox []byte, init string, rootMods, laterMods []string) error {
	idx, err := indexModules(k.Modules())
	if err != nil {
		return err
	}
	first, err := resolveModules(idx, rootMods)
	if err != nil {
		return fmt.Errorf("initramfs modules: %w", err)
	}
	all, err := resolveModules(idx, append(slices.Clone(rootMods), laterMods...))
	if err != nil {
		return fmt.Errorf("initramfs modules: %w", err)
	}
	// all lists first's modules in the same order, each after its
	// dependencies: what is left loads after first, in order.
	var later []string
	for _, ko := range all {
		if !slices.Contains(first, ko) {
			later = append(later, ko)
		}
	}
	var buf bytes.Buffer
	w := &cpioWriter{w: &buf}
	for _, d := range []string{"bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"} {
		w.Dir(d, 0o755)
	}
	w.CharDev("dev/console", 0o600, 5, 1)
	w.File("bin/busybox", 0o755, busybox)
	for _, applet := range []string{"sh", "mount", "umount", "insmod", "sleep", "poweroff", "switch_root"} {
		w.Symlink("bin/"+applet, "busybox")
	}
	w.File("init", 0o755, []byte(init))
	for _, list := range []struct {
		name string
		kos  []string
	}{{"order", first}, {"order.later", later}} {
		var names []string
		for _, ko := range list.kos {
			data, err := os.ReadFile(ko)
			if err != nil {
				return fmt.Errorf("initramfs modules: %w", err)
			}
			w.File("lib/modules/"+filepath.Base(ko), 0o644, data)
			names = append(names, filepath.Base(ko))
		}
		w.File("lib/modules/"+list.name, 0o644, []byte(strings.Join(names, "\n")+"\n"))
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

// Deb returns a .deb of package name: from apt's archive cache, else from
// the cache's debs directory, where it is downloaded when missing.
func (c *Cache) Deb(ctx context.Context, name string) (string, error) {
	return findDeb(ctx, filepath.Join(c.Dir, "debs"), name)
}

// debFile returns the content of one file of a .deb.
func debFile(ctx context.Context, deb, path string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "berth-vm-deb-")
	if err != nil {
		return nil, fmt.Errorf("create unpack directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := run(ctx, "", "dpkg-deb", "-x", deb, tmp); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	data, err := os.ReadFile(filepath.Join(tmp, path))
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	return data, nil
}
