package nsenter

import "testing"

func TestNewTimeEnv(t *testing.T) {
	got, err := NewTimeEnv(map[string]Offset{
		"monotonic": {Secs: -5, Nanosecs: 1},
		"boottime":  {Secs: 86400},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Numeric clock ids, boottime (7) sorted before monotonic (1) by name.
	if want := NewTimeVar + "=7 86400 0\n1 -5 1\n"; got != want {
		t.Errorf("NewTimeEnv = %q, want %q", got, want)
	}
	if got, _ := NewTimeEnv(nil); got != NewTimeVar+"=" {
		t.Errorf("no offsets: %q, want the variable set and empty", got)
	}
	for name, offs := range map[string]map[string]Offset{
		"unknown clock": {"realtime": {Secs: 1}},
		"whole second":  {"monotonic": {Nanosecs: 1e9}},
	} {
		if _, err := NewTimeEnv(offs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEnv(t *testing.T) {
	if got, want := Env([]Join{{3, "user"}, {4, "mnt"}}), EnvVar+"=3:user,4:mnt"; got != want {
		t.Errorf("Env = %q, want %q", got, want)
	}
}
