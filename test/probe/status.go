package main

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// capNames maps capability numbers to names, from <linux/capability.h>.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capSet turns a hex mask from /proc/self/status ("000001fffeffffff") into
// a sorted list of names; bits without a name become "CAP_<n>" so that a
// newer kernel's capabilities are still visible.
func capSet(hex string) ([]string, error) {
	mask, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return nil, fmt.Errorf("parse capability mask %q: %w", hex, err)
	}
	names := []string{}
	for bit := 0; bit < 64; bit++ {
		if mask&(1<<bit) == 0 {
			continue
		}
		if bit < len(capNames) {
			names = append(names, capNames[bit])
		} else {
			names = append(names, "CAP_"+strconv.Itoa(bit))
		}
	}
	slices.Sort(names)
	return names, nil
}

// parseStatus splits /proc/self/status into its "Key:\tvalue" fields.
func parseStatus(data []byte) map[string]string {
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// statFields returns the fields of /proc/self/stat after the command name.
// The name is in parentheses and may itself contain spaces and ")", so the
// split starts after the last ")": index 0 is then field 3 (state),
// 1 ppid, 2 pgrp, 3 session, 4 tty_nr, per proc(5).
func statFields(data []byte) ([]string, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/self/stat: no command name")
	}
	return strings.Fields(string(data[i+1:])), nil
}

// ttyDevice decodes the tty_nr field of /proc/self/stat: the minor number
// is split across bits 31-20 and 7-0, the major is bits 15-8.
func ttyDevice(nr uint64) (major, minor int) {
	return int((nr >> 8) & 0xfff), int((nr & 0xff) | ((nr >> 12) & 0xfff00))
}
