package vm

import (
	"errors"
	"testing"
)

const (
	cpuinfoVMX = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx sse2\ncpu MHz\t\t: 2096.017\n"
	cpuinfoSVM = "processor\t: 0\nflags\t\t: fpu svm lm\n"
	// The berth build machines: hypervisor, no vmx or svm.
	cpuinfoPVM = "processor\t: 0\nflags\t\t: fpu tsc hypervisor lahf_lm vmmcall\n"
)

func TestChooseAccel(t *testing.T) {
	for _, c := range []struct {
		name string
		f    hostFacts
		want Accel
	}{
		{"vmx and kvm", hostFacts{CPUInfo: cpuinfoVMX, KVMAPIVersion: 12}, KVM},
		{"svm and kvm", hostFacts{CPUInfo: cpuinfoSVM, KVMAPIVersion: 12}, KVM},
		{"no vmx or svm, /dev/kvm answers", hostFacts{CPUInfo: cpuinfoPVM, KVMAPIVersion: 12}, TCG},
		{"pvm module despite vmx", hostFacts{CPUInfo: cpuinfoVMX, PVM: true, KVMAPIVersion: 12}, TCG},
		{"no /dev/kvm", hostFacts{CPUInfo: cpuinfoVMX, KVMErr: errors.New("open /dev/kvm: no such file")}, TCG},
		{"odd API version", hostFacts{CPUInfo: cpuinfoVMX, KVMAPIVersion: 11}, TCG},
		{"no cpuinfo", hostFacts{KVMAPIVersion: 12}, TCG},
		{"vmx only in model name", hostFacts{CPUInfo: "model name\t: vmx svm\nflags\t: fpu\n", KVMAPIVersion: 12}, TCG},
	} {
		got, why := chooseAccel(c.f)
		if got != c.want || why == "" {
			t.Errorf("%s: chooseAccel = %s (%q), want %s", c.name, got, why, c.want)
		}
	}
}

func TestHostTSCkHz(t *testing.T) {
	if got := hostTSCkHz(cpuinfoVMX); got != 2096017 {
		t.Errorf("hostTSCkHz = %d, want 2096017", got)
	}
	if got := hostTSCkHz(cpuinfoSVM); got != 0 {
		t.Errorf("no cpu MHz: hostTSCkHz = %d, want 0", got)
	}
}
