package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/probe/report"
)

func cmdReport() int {
	return printJSON(gather())
}

// gather collects the report. A part that cannot be read leaves its field
// at the zero value and adds a line to Errors, so one missing /proc file
// does not hide everything else.
func gather() *report.Report {
	r := &report.Report{}
	note := func(err error) {
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	// First, before anything else can open a descriptor (see doc.go).
	fds, err := openFDs()
	r.FDs = fds
	note(err)

	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		note(fmt.Errorf("uname: %w", err))
	} else {
		r.Hostname = unix.ByteSliceToString(uts.Nodename[:])
		r.Domainname = unix.ByteSliceToString(uts.Domainname[:])
	}

	r.PID = os.Getpid()
	r.PPID = os.Getppid()
	r.PGID, err = unix.Getpgid(0)
	note(wrap("getpgid", err))
	r.SID, err = unix.Getsid(0)
	note(wrap("getsid", err))
	r.UID, r.EUID, r.SUID = unix.Getresuid()
	r.GID, r.EGID, r.SGID = unix.Getresgid()
	groups, err := unix.Getgroups()
	note(wrap("getgroups", err))
	r.Groups = groups
	if r.Groups == nil {
		r.Groups = []int{}
	}

	note(readStatus(r))
	r.Rlimits, err = rlimits()
	note(err)
	r.Mounts, err = mounts()
	note(err)
	r.Namespaces = namespaces()
	r.Cgroup, err = lines("/proc/self/cgroup")
	note(err)

	r.Cwd, err = os.Getwd()
	note(wrap("getwd", err))
	r.Env = os.Environ()
	r.Exe, err = os.Readlink("/proc/self/exe")
	note(err)

	if b, err := readFile("/proc/self/oom_score_adj"); err != nil {
		note(err)
	} else if r.OOMScoreAdj, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		note(fmt.Errorf("parse oom_score_adj: %w", err))
	}
	// 0xffffffff queries the persona without changing it.
	if p, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); errno != 0 {
		note(fmt.Errorf("personality: %w", errno))
	} else {
		r.Personality = uint32(p)
	}
	note(readTTY(r))
	return r
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// openFDs lists /proc/self/fd without the descriptor reading it.
func openFDs() ([]report.FD, error) {
	fds := []report.FD{}
	dir, err := openFile("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fds, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fds, fmt.Errorf("read /proc/self/fd: %w", err)
	}
	self := int(dir.Fd())
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || n == self {
			continue
		}
		// A descriptor closed since the listing has no link: skip it.
		target, err := os.Readlink("/proc/self/fd/" + name)
		if err != nil {
			continue
		}
		fds = append(fds, report.FD{FD: n, Target: target})
	}
	slices.SortFunc(fds, func(a, b report.FD) int { return a.FD - b.FD })
	return fds, nil
}

// readStatus fills the fields that come from /proc/self/status.
func readStatus(r *report.Report) error {
	data, err := readFile("/proc/self/status")
	if err != nil {
		return err
	}
	st := parseStatus(data)
	sets := []struct {
		key string
		dst *[]string
	}{
		{"CapBnd", &r.Capabilities.Bounding},
		{"CapPrm", &r.Capabilities.Permitted},
		{"CapEff", &r.Capabilities.Effective},
		{"CapInh", &r.Capabilities.Inheritable},
		{"CapAmb", &r.Capabilities.Ambient},
	}
	var errs []string
	for _, s := range sets {
		*s.dst = []string{}
		v, ok := st[s.key]
		if !ok {
			continue // CapAmb is missing before Linux 4.3
		}
		names, err := capSet(v)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		*s.dst = names
	}
	r.NoNewPrivs = st["NoNewPrivs"] == "1"
	r.Seccomp, _ = strconv.Atoi(st["Seccomp"])
	r.SeccompFilters = -1
	if v, ok := st["Seccomp_filters"]; ok {
		r.SeccompFilters, _ = strconv.Atoi(v)
	}
	r.Umask = st["Umask"]
	if len(errs) > 0 {
		return fmt.Errorf("read /proc/self/status: %s", strings.Join(errs, "; "))
	}
	return nil
}

func mounts() ([]report.Mount, error) {
	data, err := readFile("/proc/self/mountinfo")
	if err != nil {
		return []report.Mount{}, err
	}
	return parseMountinfo(data)
}

// namespaces reads the inode of every /proc/self/ns entry; the link text
// is "mnt:[4026531841]".
func namespaces() map[string]uint64 {
	ns := map[string]uint64{}
	for _, kind := range report.NamespaceKinds {
		ns[kind] = 0
		link, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			continue
		}
		_, ino, ok := strings.Cut(link, ":[")
		if !ok {
			continue
		}
		ns[kind], _ = strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
	}
	return ns
}

func lines(path string) ([]string, error) {
	out := []string{}
	data, err := readFile(path)
	if err != nil {
		return out, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func readTTY(r *report.Report) error {
	r.TTY.Stdin0IsTTY = isTerminal(0)
	if r.TTY.Stdin0IsTTY {
		r.TTY.Name, _ = os.Readlink("/proc/self/fd/0")
	}
	data, err := readFile("/proc/self/stat")
	if err != nil {
		return err
	}
	f, err := statFields(data)
	if err != nil {
		return err
	}
	if len(f) < 5 {
		return fmt.Errorf("parse /proc/self/stat: %d fields", len(f))
	}
	nr, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil {
		return fmt.Errorf("parse /proc/self/stat tty_nr: %w", err)
	}
	r.TTY.CttyMajor, r.TTY.CttyMinor = ttyDevice(nr)
	return nil
}
