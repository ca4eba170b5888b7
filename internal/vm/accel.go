package vm

import (
	"fmt"
	"math"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// An Accel is how qemu runs guest code.
type Accel string

const (
	// TCG is qemu's software emulation: slow, but runs anywhere.
	TCG Accel = "tcg"
	// KVM is hardware virtualization through /dev/kvm.
	KVM Accel = "kvm"
)

// hostFacts are what the accelerator choice looks at, gathered by
// gatherHostFacts and faked by tests.
type hostFacts struct {
	// CPUInfo is /proc/cpuinfo.
	CPUInfo string
	// PVM tells whether the kvm_pvm module is loaded: a /dev/kvm that
	// runs guests without VMX or SVM, and only kernels built for it.
	PVM bool
	// KVMAPIVersion is what KVM_GET_API_VERSION returned on /dev/kvm, or
	// the error opening or asking it.
	KVMAPIVersion int
	KVMErr        error
}

// kvmAPIVersion is the only version of the KVM API there has ever been;
// the kernel returns it from KVM_GET_API_VERSION.
const kvmAPIVersion = 12

// kvmGetAPIVersion is _IO(KVMIO, 0x00), KVMIO being 0xAE.
const kvmGetAPIVersion = 0xAE00

// chooseAccel picks KVM only when everything says it runs stock kernels:
// the CPU advertises VMX (Intel) or SVM (AMD), no PVM module stands behind
// /dev/kvm, and /dev/kvm answers the API version. A /dev/kvm alone proves
// nothing: on the berth build machines it is PVM-based and a Debian kernel
// dies under it, where TCG works. The reason explains the choice.
func chooseAccel(f hostFacts) (Accel, string) {
	if !cpuHasVirt(f.CPUInfo) {
		return TCG, "the CPU flags have no vmx or svm"
	}
	if f.PVM {
		return TCG, "/dev/kvm is PVM (kvm_pvm is loaded), which cannot run a stock kernel"
	}
	if f.KVMErr != nil {
		return TCG, fmt.Sprintf("/dev/kvm: %v", f.KVMErr)
	}
	if f.KVMAPIVersion != kvmAPIVersion {
		return TCG, fmt.Sprintf("/dev/kvm: API version %d, want %d", f.KVMAPIVersion, kvmAPIVersion)
	}
	return KVM, "the CPU has hardware virtualization and /dev/kvm answers"
}

// cpuHasVirt reports whether a flags line of cpuinfo lists vmx or svm.
func cpuHasVirt(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		for _, fl := range strings.Fields(v) {
			if fl == "vmx" || fl == "svm" {
				return true
			}
		}
	}
	return false
}

func gatherHostFacts() hostFacts {
	var f hostFacts
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		f.CPUInfo = string(b)
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		f.PVM = true
	}
	f.KVMAPIVersion, f.KVMErr = kvmVersion()
	return f
}

func kvmVersion() (int, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: "/dev/kvm", Err: err}
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return 0, os.NewSyscallError("ioctl KVM_GET_API_VERSION", err)
	}
	return v, nil
}

// DetectAccel returns the accelerator to use on this host and why.
func DetectAccel() (Accel, string) {
	return chooseAccel(gatherHostFacts())
}

// hostTSCkHz returns the host's TSC frequency in kHz from cpuinfo's
// "cpu MHz", or 0. Under TCG the guest reads the host's TSC, and telling
// the guest kernel its frequency (tsc_early_khz=) skips a calibration that
// a busy host can stretch or hang.
func hostTSCkHz(cpuinfo string) int {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		var mhz float64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f", &mhz); err == nil && mhz > 0 {
			return int(math.Round(mhz * 1000))
		}
	}
	return 0
}
