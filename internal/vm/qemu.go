package vm

import (
	"fmt"
	"strconv"
	"strings"
)

// A Share is a host directory the guest mounts over 9p.
type Share struct {
	// Tag names the share to the guest's mount (mount -t 9p TAG DIR).
	Tag string
	// HostPath is the directory shared.
	HostPath string
	// GuestPath is where the job script mounts it; empty for shares the
	// guest side mounts itself (the job share).
	GuestPath string
	// ReadOnly makes qemu refuse the guest's writes, and lets the guest
	// cache what it reads (cache=loose): the host must not change the
	// directory while the guest runs.
	ReadOnly bool
}

// outputPortName names the virtio-serial port the job's output goes
// through; the guest agent finds its device by this name in
// /sys/class/virtio-ports, as udev (absent in the guest) would.
const outputPortName = "org.berth-project.vm.output"

// qemuConfig is everything a qemu command line is made from.
type qemuConfig struct {
	Accel Accel
	// Machine is "microvm" (boots Kernel as an ELF vmlinux through PVH,
	// devices on virtio-mmio) or "pc" (boots a bzImage, devices on PCI).
	Machine   string
	CPUs      int
	MemoryMiB int
	Kernel    string
	Initrd    string
	Cmdline   string
	// Disk is the root disk image, attached first (the guest's /dev/vda)
	// as a snapshot: the guest's writes go to a temporary file qemu
	// deletes, so the cached image is never changed and every boot starts
	// from the same state.
	Disk   string
	Shares []Share
	// ConsoleLog receives the serial console: kernel and systemd messages.
	ConsoleLog string
	// OutputSocket is a unix socket qemu connects to at start-up for the
	// output port.
	OutputSocket string
}

// args returns qemu's arguments for c.
func (c qemuConfig) args() ([]string, error) {
	var bus string
	var machine string
	switch c.Machine {
	case "microvm":
		// No legacy PIC or PIT to emulate (the RTC stays: it gives the guest
		// the time of day); ACPI stays on, as it is
		// how the guest kernel finds the virtio-mmio devices (Debian's
		// kernel lacks virtio_mmio.device= parsing).
		machine, bus = "microvm,pic=off,pit=off,isa-serial=on", "device"
	case "pc":
		machine, bus = "pc", "pci"
	default:
		return nil, fmt.Errorf("qemu arguments: unknown machine type %q", c.Machine)
	}
	a := []string{
		"-M", machine,
		"-nodefaults", "-no-user-config", "-display", "none",
		// A guest that reboots (on a kernel panic, with panic=-1) ends
		// qemu, so a crash is seen at once instead of after a timeout.
		"-no-reboot",
		"-smp", strconv.Itoa(c.CPUs),
		"-m", strconv.Itoa(c.MemoryMiB),
	}
	switch c.Accel {
	case KVM:
		a = append(a, "-accel", "kvm", "-cpu", "host")
	case TCG:
		a = append(a, "-accel", "tcg,thread=multi", "-cpu", "max")
	default:
		return nil, fmt.Errorf("qemu arguments: unknown accelerator %q", c.Accel)
	}
	a = append(a,
		"-kernel", c.Kernel,
		"-initrd", c.Initrd,
		"-append", c.Cmdline,
		"-chardev", "file,id=console,path="+optValue(c.ConsoleLog),
		"-serial", "chardev:console",
		"-drive", "id=root,if=none,format=raw,snapshot=on,file="+optValue(c.Disk),
		"-device", "virtio-blk-"+bus+",drive=root",
	)
	for i, s := range c.Shares {
		id := "share" + strconv.Itoa(i)
		fsdev := "local,id=" + id + ",security_model=none,path=" + optValue(s.HostPath)
		if s.ReadOnly {
			fsdev += ",readonly=on"
		}
		a = append(a,
			"-fsdev", fsdev,
			"-device", "virtio-9p-"+bus+",fsdev="+id+",mount_tag="+optValue(s.Tag),
		)
	}
	a = append(a,
		"-chardev", "socket,id=output,path="+optValue(c.OutputSocket),
		"-device", "virtio-serial-"+bus,
		"-device", "virtserialport,chardev=output,name="+outputPortName,
	)
	return a, nil
}

// optValue escapes a value for qemu's comma-separated options, where a
// comma is written twice.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// kernelCmdline returns the guest kernel's command line: the serial
// console, the systemd target that runs the agent, a crash that ends the
// machine, and under TCG what spares the emulated boot time. extra comes
// last, so it can override.
func kernelCmdline(accel Accel, tscKHz int, extra []string) string {
	args := []string{
		"console=ttyS0",
		// panic=-1 reboots at once on a panic, and -no-reboot turns that
		// into qemu's exit.
		"panic=-1",
		"reboot=t",
		"systemd.unit=berth-vm.target",
		"systemd.show_status=auto",
		// No fsck of a throw-away snapshot; no guessing of the journal's
		// home on the console.
		"fsck.mode=skip",
		"8250.nr_uarts=1",
	}
	if accel == TCG {
		// Crypto self-tests at boot take up to a second of emulated time;
		// zeroing every allocated page (Debian's hardening default) a few
		// tenths more, and every process start pays for it again.
		args = append(args, "cryptomgr.notests", "init_on_alloc=0")
		if tscKHz > 0 {
			args = append(args, "tsc_early_khz="+strconv.Itoa(tscKHz))
		}
		// The vCPUs' TSCs are the host's, but their synchronization check
		// fails under emulation and the guest falls back to jiffies, which
		// lose time whenever the host is busy: the guest's clock then runs
		// slow and its timeouts long.
		args = append(args, "tsc=reliable")
	}
	return strings.Join(append(args, extra...), " ")
}
