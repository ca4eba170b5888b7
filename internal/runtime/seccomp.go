package runtime

import (
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// compileSeccomp compiles the spec's seccomp profile once, in the runtime,
// so that a bad profile fails before anything exists, and connects to the
// notify listener from the runtime's own mount namespace and credentials
// (the process that loads the filter may see neither the path nor be
// allowed to connect). The caller closes conn.
func compileSeccomp(s *specs.LinuxSeccomp) (enc *seccomp.Encoded, conn *os.File, err error) {
	if s == nil {
		return nil, nil, nil
	}
	f, err := seccomp.Compile(s)
	if err != nil {
		return nil, nil, invalid("linux.seccomp: %v", err)
	}
	if f.Notify() {
		if s.ListenerPath == "" {
			return nil, nil, invalid("linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath")
		}
		conn, err = seccomp.DialListener(s.ListenerPath)
		if err != nil {
			return nil, nil, fmt.Errorf("seccomp listener %s: %w", s.ListenerPath, err)
		}
	}
	return f.Encode(), conn, nil
}
