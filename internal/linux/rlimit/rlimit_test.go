package rlimit

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for name, want := range map[string]int{
		"RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
		"RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
		"RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
		"RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
	} {
		got, err := Parse(name)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, bad := range []string{"RLIMIT_FOO", "nofile", "rlimit_nofile", ""} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("Parse(%q) error = %v, want one naming it", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 2}, {Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY}}
	if err := Validate(ok); err != nil {
		t.Errorf("Validate(%v) = %v", ok, err)
	}
	for _, c := range []struct {
		list []specs.POSIXRlimit
		want string
	}{
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}, {Type: "RLIMIT_NOFILE"}}, "RLIMIT_NOFILE: listed more than once"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 3, Hard: 2}}, "set RLIMIT_NOFILE to 3/2: soft limit above hard limit"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: 0}}, "set RLIMIT_CORE to unlimited/0"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}, {Type: "RLIMIT_BOGUS"}}, `"RLIMIT_BOGUS"`},
	} {
		err := Validate(c.list)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, unix.EINVAL) {
			t.Errorf("Validate(%v) = %v, want EINVAL containing %q", c.list, err, c.want)
		}
	}
}
