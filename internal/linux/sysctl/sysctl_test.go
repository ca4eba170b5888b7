package sysctl

import "testing"

func TestValidate(t *testing.T) {
	all := map[Namespace]bool{"ipc": true, "uts": true, "network": true}
	ok := []string{"kernel.shmmax", "fs.mqueue.msg_max", "net.ipv4.ip_forward", "net/ipv4/conf/eth0.100/forwarding", "kernel.domainname"}
	for _, k := range ok {
		if err := Validate(k, "1", all); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	bad := []string{"kernel.core_pattern", "vm.overcommit_memory", "", "net..ipv4", "net/../kernel/core_pattern", "kernel.shmmax/.."}
	for _, k := range bad {
		if err := Validate(k, "1", all); err == nil {
			t.Errorf("%s: accepted", k)
		}
	}
	if err := Validate("net.ipv4.ip_forward", "1", map[Namespace]bool{"ipc": true}); err == nil {
		t.Error("net sysctl accepted without a network namespace")
	}
	if err := Validate("kernel.shm_rmid_forced", "1\nkernel.core_pattern=|/x", all); err == nil {
		t.Error("value with a newline accepted")
	}
}
