package shim

import (
	"strings"
	"testing"
)

func TestValidExecID(t *testing.T) {
	for _, id := range []string{"a", "0", "exec-1", "A_b.c-d", strings.Repeat("x", 128)} {
		if !validExecID(id) {
			t.Errorf("%q refused", id)
		}
	}
	for _, id := range []string{"", "-a", ".a", "_a", "a/b", "a b", "a\x00", "é", strings.Repeat("x", 129), "../x"} {
		if validExecID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}
