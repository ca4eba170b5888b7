package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-project/berth/test/probe/report"
)

// parseMountinfo parses /proc/self/mountinfo, whose lines are (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// with zero or more optional fields (7) ended by "-".
func parseMountinfo(data []byte) ([]report.Mount, error) {
	mounts := []report.Mount{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return mounts, err
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return mounts, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

func parseMountLine(line string) (report.Mount, error) {
	var m report.Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+4 {
		return m, fmt.Errorf("parse mountinfo line %q: too few fields", line)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("parse mountinfo line %q: mount id: %w", line, err)
	}
	if m.ParentID, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("parse mountinfo line %q: parent id: %w", line, err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("parse mountinfo line %q: device %q", line, f[2])
	}
	if m.Major, err = strconv.Atoi(maj); err != nil {
		return m, fmt.Errorf("parse mountinfo line %q: major: %w", line, err)
	}
	if m.Minor, err = strconv.Atoi(min); err != nil {
		return m, fmt.Errorf("parse mountinfo line %q: minor: %w", line, err)
	}
	m.Root = unescapeOctal(f[3])
	m.MountPoint = unescapeOctal(f[4])
	m.Options = splitOptions(f[5])
	m.Propagation = append([]string{}, f[6:sep]...)
	m.FSType = f[sep+1]
	m.Source = unescapeOctal(f[sep+2])
	m.SuperOptions = splitOptions(f[sep+3])
	return m, nil
}

func splitOptions(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// unescapeOctal undoes the kernel's mangling of space, tab, newline and
// backslash in mountinfo paths (written as \040, \011, \012, \134).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
