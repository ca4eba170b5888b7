package vm

import (
	"slices"
	"strings"
	"testing"
)

// pairs returns the values of flag in args, in order.
func pairs(args []string, flag string) []string {
	var v []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			v = append(v, args[i+1])
		}
	}
	return v
}

func testConfig() qemuConfig {
	return qemuConfig{
		Accel: TCG, Machine: "microvm", CPUs: 2, MemoryMiB: 1024,
		Kernel: "/c/vmlinux", Initrd: "/c/initrd.cpio", Cmdline: "console=ttyS0",
		Disk: "/c/rootfs.ext4",
		Shares: []Share{
			{Tag: "berth.job", HostPath: "/run/x/job"},
			{Tag: "berth.src", HostPath: "/src,with,commas", ReadOnly: true},
		},
		ConsoleLog: "/run/x/console.log", OutputSocket: "/run/x/out.sock",
	}
}

func TestQemuArgsMicrovmTCG(t *testing.T) {
	a, err := testConfig().args()
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string][]string{
		"-M":      {"microvm,pic=off,pit=off,isa-serial=on"},
		"-accel":  {"tcg,thread=multi"},
		"-cpu":    {"max"},
		"-smp":    {"2"},
		"-m":      {"1024"},
		"-kernel": {"/c/vmlinux"},
		"-initrd": {"/c/initrd.cpio"},
		"-append": {"console=ttyS0"},
		"-drive":  {"id=root,if=none,format=raw,snapshot=on,file=/c/rootfs.ext4"},
		"-fsdev": {
			"local,id=share0,security_model=none,path=/run/x/job",
			"local,id=share1,security_model=none,path=/src,,with,,commas,readonly=on",
		},
		"-device": {
			"virtio-blk-device,drive=root",
			"virtio-9p-device,fsdev=share0,mount_tag=berth.job",
			"virtio-9p-device,fsdev=share1,mount_tag=berth.src",
			"virtio-serial-device",
			"virtserialport,chardev=output,name=" + outputPortName,
		},
		"-chardev": {"file,id=console,path=/run/x/console.log", "socket,id=output,path=/run/x/out.sock"},
		"-serial":  {"chardev:console"},
	} {
		if got := pairs(a, flag); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
	for _, f := range []string{"-nodefaults", "-no-reboot"} {
		if !slices.Contains(a, f) {
			t.Errorf("no %s in %q", f, a)
		}
	}
}

func TestQemuArgsPCKVM(t *testing.T) {
	c := testConfig()
	c.Accel, c.Machine = KVM, "pc"
	a, err := c.args()
	if err != nil {
		t.Fatal(err)
	}
	if got := pairs(a, "-accel"); !slices.Equal(got, []string{"kvm"}) {
		t.Errorf("-accel = %q", got)
	}
	if got := pairs(a, "-cpu"); !slices.Equal(got, []string{"host"}) {
		t.Errorf("-cpu = %q", got)
	}
	for _, d := range pairs(a, "-device") {
		if strings.HasSuffix(strings.Split(d, ",")[0], "-device") {
			t.Errorf("pc machine with an mmio device: %s", d)
		}
	}
	if !slices.Contains(pairs(a, "-device"), "virtio-blk-pci,drive=root") {
		t.Errorf("no virtio-blk-pci in %q", a)
	}
}

func TestQemuArgsRefuses(t *testing.T) {
	c := testConfig()
	c.Machine = "q35"
	if _, err := c.args(); err == nil {
		t.Error("unknown machine: no error")
	}
	c = testConfig()
	c.Accel = "hvf"
	if _, err := c.args(); err == nil {
		t.Error("unknown accelerator: no error")
	}
}

func TestKernelCmdline(t *testing.T) {
	tcg := kernelCmdline(TCG, 2096017, []string{"cgroup_no_v1=all"})
	for _, want := range []string{"console=ttyS0", "panic=-1", "systemd.unit=berth-vm.target", "cryptomgr.notests", "init_on_alloc=0", "tsc_early_khz=2096017", "tsc=reliable"} {
		if !slices.Contains(strings.Fields(tcg), want) {
			t.Errorf("TCG command line %q lacks %s", tcg, want)
		}
	}
	if !strings.HasSuffix(tcg, " cgroup_no_v1=all") {
		t.Errorf("extra arguments not last: %q", tcg)
	}
	kvm := kernelCmdline(KVM, 2096017, nil)
	for _, no := range []string{"tsc_early_khz", "tsc=reliable", "cryptomgr.notests", "init_on_alloc"} {
		if strings.Contains(kvm, no) {
			t.Errorf("KVM command line %q has the TCG-only %s", kvm, no)
		}
	}
	if strings.Contains(kernelCmdline(TCG, 0, nil), "tsc_early_khz") {
		t.Error("tsc_early_khz without a known frequency")
	}
}
