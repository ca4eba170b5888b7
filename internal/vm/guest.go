package vm

import (
	"fmt"
	"strings"
)

// The guest side of a run, and how commands and results cross:
//
//	host (Machine.Run)                         guest
//	------------------                         -----
//	writes job.sh into the job directory
//	listens on out.sock; starts qemu   ---->   initramfs: insmod drivers, mount /dev/vda, switch_root
//	                                           systemd boots berth-vm.target -> berth-vm.service:
//	                                   <----   agent mounts the job share (9p tag berth.job)
//	                                           agent runs job.sh, stdout+stderr on the output port
//	streams the port's lines to Output <----   job.sh: "berth-vm: kernel ...", "berth-vm: cgroupfs ...",
//	                                           mounts the other shares, "berth-vm: job", the job
//	                                           agent writes job.sh's exit code to job/status
//	waits for qemu to exit             <----   agent: systemctl poweroff -ff
//	reads job/status
//
// The output port is a virtio-serial port (not a console: no line
// discipline rewrites the bytes) that qemu connects to the host's socket.
// The status travels through the 9p share, not the stream, so no output a
// job prints can forge it. A guest that never reaches the agent never
// writes a status, and the host fails it on a timeout or when qemu exits,
// with the serial console's log.

// Guest paths and names shared by the image and the host.
const (
	jobTag      = "berth.job"
	guestRunDir = "/run/berth-vm"
	jobScript   = "job.sh"
	statusFile  = "status"
	// headerPrefix starts the lines job.sh prints before the job.
	headerPrefix = "berth-vm: "
)

// agentScript runs in the guest as berth-vm.service. Under emulation
// every program started costs tens of milliseconds, so it sticks to shell
// builtins where it can. The status needs no atomic rename: the host reads
// it only after qemu has exited.
const agentScript = `#!/bin/sh
# The berth-vm guest agent (internal/vm/guest.go): runs the job the host
# put in the shared directory, records its exit code there and powers the
# machine off.
job=` + guestRunDir + `/job
out=/dev/console
for p in /sys/class/virtio-ports/*; do
	read -r name <"$p/name" && [ "$name" = ` + outputPortName + ` ] && out=/dev/${p##*/}
done 2>/dev/null
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ` + jobTag + ` "$job"; then
	(. "$job/` + jobScript + `") >"$out" 2>&1 </dev/null
	echo $? >"$job/` + statusFile + `"
else
	echo "berth-vm agent: cannot mount the job share" >/dev/console
fi
# Forced: the disk is a snapshot qemu discards, so an orderly shutdown
# would only cost time.
systemctl poweroff --force --force
`

const agentPath = "/usr/local/lib/berth-vm/agent"

// targetUnit is what the guest boots (systemd.unit= on the kernel command
// line): basic.target brings sysinit (mounts, journald, tmpfiles) and the
// sockets, among them D-Bus's, which systemd-run and the systemd cgroup
// driver need; then the agent. multi-user.target's gettys, cron and the
// like are never started.
const targetUnit = `[Unit]
Description=berth-vm: run the host's job and power off
Requires=basic.target
After=basic.target
Wants=berth-vm.service
AllowIsolate=yes
`

const serviceUnit = `[Unit]
Description=berth-vm guest agent
After=basic.target dbus.socket

[Service]
Type=oneshot
ExecStart=` + agentPath + `
# The job share's mount point, made without starting a mkdir.
RuntimeDirectory=berth-vm/job
RuntimeDirectoryPreserve=yes
Environment=HOME=/root
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console
`

// guestMasks are units the guest never starts. Each unit started costs
// about a tenth of a second under emulation, so the guest keeps what a
// container host has that tests may notice (journald, tmpfiles, sysctl,
// D-Bus, the hugetlbfs and mqueue mounts) and drops the rest:
//   - udev, which costs seconds and has nothing to do: the initramfs loads
//     every driver the machine's devices need;
//   - modules loaded ahead of need (the kernel loads them on demand), the
//     debug, tracing, configfs and fuse control mounts;
//   - what only matters for a machine that lives longer than one job or
//     whose disk changes: remounting the root, fsck, sysusers, utmp,
//     periodic timers, and the "NeedsUpdate" units, which a fresh snapshot
//     on every boot would run on every boot;
//   - logins, and what serves a person at a console or a long-lived
//     machine: the password agent, SysV's initctl, the binfmt_misc
//     automount, podman's API socket and its auto-update timer (the
//     tests drive podman's CLI).
var guestMasks = []string{
	"systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
	"systemd-udev-trigger.service", "systemd-udev-settle.service",
	"modprobe@configfs.service", "modprobe@dm_mod.service", "modprobe@fuse.service",
	"modprobe@loop.service", "modprobe@drm.service", "modprobe@efi_pstore.service",
	"kmod-static-nodes.service", "systemd-modules-load.service",
	"sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-kernel-config.mount",
	"sys-fs-fuse-connections.mount",
	"systemd-remount-fs.service", "systemd-sysusers.service", "systemd-update-utmp.service",
	"systemd-tmpfiles-setup-dev.service", "systemd-random-seed.service",
	"systemd-journal-flush.service", "systemd-pstore.service", "systemd-firstboot.service",
	"systemd-hwdb-update.service", "ldconfig.service", "systemd-journal-catalog-update.service",
	"systemd-update-done.service",
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
	"e2scrub_all.timer", "systemd-tmpfiles-clean.timer",
	"getty.target", "serial-getty@ttyS0.service", "console-getty.service",
	"systemd-ask-password-console.path", "systemd-initctl.socket", "proc-sys-fs-binfmt_misc.automount",
	"podman.socket", "podman-auto-update.timer",
}

// guestFiles are written into the image.
func guestFiles() []File {
	return []File{
		{Path: agentPath, Mode: 0o755, Data: agentScript},
		{Path: "etc/systemd/system/berth-vm.target", Mode: 0o644, Data: targetUnit},
		{Path: "etc/systemd/system/berth-vm.service", Mode: 0o644, Data: serviceUnit},
		{Path: "etc/fstab", Mode: 0o644, Data: "/dev/vda / ext4 rw,noatime 0 0\n"},
		{Path: "etc/hostname", Mode: 0o644, Data: "berth-vm\n"},
		// debootstrap leaves no hosts file and copies the build host's
		// resolv.conf: localhost must resolve without DNS, and the guest,
		// which has no network, has no name server to ask.
		{Path: "etc/hosts", Mode: 0o644, Data: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tberth-vm\n"},
		{Path: "etc/resolv.conf", Mode: 0o644, Data: "# berth-vm: the guest has no network\n"},
		// A machine ID makes this boot not the "first boot", which would
		// run systemd-firstboot and preset every unit.
		{Path: "etc/machine-id", Mode: 0o444, Data: "8e5b0d3c7f2a4e19a6c1b2d3e4f50617\n"},
		// The journal stays in memory: nothing of a guest's outlives it
		// but what the job prints.
		{Path: "etc/systemd/journald.conf.d/berth-vm.conf", Mode: 0o644, Data: "[Journal]\nStorage=volatile\n"},
	}
}

// jobScriptText returns job.sh: the header lines, the mounts of shares,
// the marker, then script. requireFS, when set, is the filesystem type
// /sys/fs/cgroup must have, else the job does not run (exit 125).
//
// Under emulation each program started costs 30 ms or more, a 9p mount
// more still: the shares are mounted side by side, in the background
// while the header is printed, and the job starts once all are in place.
func jobScriptText(script string, shares []Share, requireFS string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by berth-vm on the host (internal/vm/guest.go).\n")
	// The kernel release through a builtin (uname would be one more
	// program to start), the filesystem type as stat(1) names it.
	b.WriteString("read -r kernel </proc/sys/kernel/osrelease\n")
	fmt.Fprintf(&b, "echo \"%skernel $kernel\"\n", headerPrefix)
	var mounted []Share
	var dirs []string
	for _, s := range shares {
		if s.GuestPath != "" {
			mounted = append(mounted, s)
			dirs = append(dirs, s.GuestPath)
		}
	}
	if len(mounted) > 0 {
		b.WriteString("shares() {\n")
		fmt.Fprintf(&b, "\tmkdir -p %s || return 1\n", ShellCommand(dirs))
		for i, s := range mounted {
			opts := "trans=virtio,version=9p2000.L,msize=262144"
			if s.ReadOnly {
				// A read-only share is the job's input, which the
				// host leaves alone while the guest runs: the guest
				// may keep what it read. Without a cache every
				// program started from the share (the tests,
				// berthd, the runtime, the shim) is read over 9p
				// again page by page: test/runtime took 185 s in the
				// guest uncached, 77 s cached.
				opts += ",ro,cache=loose"
			}
			fmt.Fprintf(&b, "\tmount -t 9p -o %s %s %s & m%d=$!\n", opts, shellQuote(s.Tag), shellQuote(s.GuestPath), i)
		}
		for i, s := range mounted {
			fmt.Fprintf(&b, "\twait $m%d || { echo \"%scannot mount %s\"; return 1; }\n", i, headerPrefix, s.Tag)
		}
		b.WriteString("}\nshares & shares=$!\n")
	}
	b.WriteString("fs=$(stat -f -c %T /sys/fs/cgroup)\n")
	fmt.Fprintf(&b, "echo \"%scgroupfs $fs\"\n", headerPrefix)
	if requireFS != "" {
		fmt.Fprintf(&b, "if [ \"$fs\" != %s ]; then echo \"%s/sys/fs/cgroup is $fs, not %s\"; exit 125; fi\n",
			shellQuote(requireFS), headerPrefix, requireFS)
	}
	if len(mounted) > 0 {
		b.WriteString("wait $shares || exit 125\n")
	}
	fmt.Fprintf(&b, "echo \"%sjob\"\n", headerPrefix)
	b.WriteString(script)
	if !strings.HasSuffix(script, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellCommand quotes args into one sh command line.
func ShellCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
