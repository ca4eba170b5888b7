package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// A bad flag value is docker's 125 with the message naming the value and
// a pointer to the help of the command typed (not docker's, not run's
// for create), found before any daemon is asked.
func TestBadFlagValueNamesCommandHelp(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	for _, verb := range []string{"run", "create"} {
		var out, errb bytes.Buffer
		code := Main([]string{"-H", host, verb, "--restart", "sometimes", "busybox"}, strings.NewReader(""), &out, &errb)
		if code != 125 {
			t.Errorf("%s: exit %d, want 125 (stderr %q)", verb, code, errb.String())
		}
		want := "invalid argument: invalid restart policy 'sometimes'\nSee 'berth " + verb + " --help'."
		if !strings.Contains(errb.String(), want) {
			t.Errorf("%s: stderr %q, want %q", verb, errb.String(), want)
		}
	}
}
