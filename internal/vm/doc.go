// Package vm boots Debian guests in qemu and runs a job in them: berth's
// test machine for what the build hosts lack (cgroup v2 only, systemd as
// PID 1), and the base of the VM-isolated containers planned for berth.
//
// The pieces, one file each:
//
//   - kernel.go: the stock Debian kernel, found through apt's
//     linux-image-amd64 metapackage, downloaded and unpacked with
//     dpkg-deb; bzimage.go turns its bzImage into the vmlinux that qemu's
//     microvm machine boots without a decompressor.
//   - image.go: the guest image, a debootstrap minbase with systemd, on an
//     ext4 disk, built from a Recipe and cached under the recipe's hash;
//     initramfs.go and cpio.go: the small initramfs that loads the drivers
//     and mounts that disk; modules.go orders the modules it loads.
//   - accel.go: KVM where the host has real hardware virtualization, TCG
//     (software emulation) elsewhere.
//   - qemu.go: the qemu command line.
//   - guest.go: what runs in the guest and how commands and results cross
//     (the diagram is there); machine.go: the host side of a run, with its
//     timeouts.
//
// Invariants:
//   - The cache (DefaultCacheDir) only ever holds complete entries: each is
//     built in a temporary directory and renamed into place.
//   - A guest never changes the cached image: its disk is a qemu snapshot,
//     discarded when qemu exits, so every run starts from the same state.
//   - A run always ends within its timeouts, with the guest's console log
//     when the guest did not run the job to the end.
//
// Host tools used: qemu-system-x86, debootstrap, apt-get, apt-cache,
// dpkg-deb, chroot, mkfs.ext4 and xz. Building images and booting guests
// needs root.
//
// Imported by cmd/berth-vm; nothing in the runtime may import it.
package vm
