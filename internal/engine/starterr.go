package engine

import (
	"errors"
	"regexp"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// A process that cannot be started — its program is missing, not
// executable, a directory — is the most common start failure there is,
// and users, scripts and test suites know it by docker's words and exit
// codes: `docker run img nosuchcmd` exits 127 with
//
//	... OCI runtime create failed: ... exec: "nosuchcmd": executable file not found in $PATH: unknown
//
// and `docker exec c nosuchcmd` likewise with "OCI runtime exec failed".
// Each runtime words the failure its own way (berth-runtime:
// `find program: "nosuchcmd": ...`, runc: `exec: "nosuchcmd": ...`), and
// the shim and runtime client wrap it in their operations; startError
// finds the program's part and gives it dockerd's frame, so the message
// is docker's whichever runtime runs the container.

// programError matches a runtime's report that a program could not be
// started: berth-runtime's "find program:" or runc's "exec:", the quoted
// program, and the reason.
var programError = regexp.MustCompile(`(?:find program|exec): ("(?:[^"\\]|\\.)*"): (.+)$`)

// The frames dockerd (with containerd) puts around a runtime's message.
const (
	createFrame = "failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process: error during container init: "
	execFrame   = "OCI runtime exec failed: exec failed: unable to start container process: "
)

// startError turns the error of a process start (a container's when
// exec is false, an exec's otherwise) into the exit code dockerd records
// for it and the error it answers with: 127 for a program that is not
// there, 126 for one that cannot be run, both invalid requests (400) in
// docker's words; 128 and the error as it is for anything else.
func startError(err error, exec bool) (int, error) {
	msg := err.Error()
	code := startExitCode(msg)
	m := programError.FindStringSubmatch(msg)
	if m == nil || code == 128 {
		return code, err
	}
	prog, reason := m[1], m[2]
	// Go's and runc's wording of a path that is not there names the stat.
	if reason == "no such file or directory" && strings.HasPrefix(prog, `"/`) {
		reason = "stat " + strings.Trim(prog, `"`) + ": " + reason
	}
	frame := createFrame
	if exec {
		frame = execFrame
	}
	return code, errdefs.Classify(errdefs.ErrInvalid, errors.New(frame+"exec: "+prog+": "+reason+": unknown"))
}

// startExitCode is dockerd's exit code for a process that could not be
// started: 127 when the program (or a path on the way to it) is not
// there, 126 when it may not be run, 128 when the cause is anything
// else.
func startExitCode(msg string) int {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "executable file not found"), strings.Contains(m, "no such file or directory"),
		strings.Contains(m, "not a directory"):
		return 127
	case strings.Contains(m, "permission denied"), strings.Contains(m, "is a directory"):
		return 126
	}
	return 128
}
