package console

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the child process of the SetupSlave and Proxy
// tests (the usual Go helper-process pattern): with helperEnv set it does its
// part and exits instead of running the tests.
const (
	helperEnv       = "BERTH_CONSOLE_TEST_HELPER"
	helperScriptEnv = "BERTH_CONSOLE_TEST_SCRIPT"
)

// Descriptors the parent passes through ExtraFiles.
const (
	helperSlaveFd  = 3
	helperReportFd = 4
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "report":
		os.Exit(helperReport())
	case "exec":
		os.Exit(helperExec())
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// slaveReport is what the "report" helper saw after SetupSlave.
type slaveReport struct {
	Pid, Sid, Pgrp  int
	TtySid, TtyPgrp int // TIOCGSID and TIOCGPGRP (tcgetpgrp) on fd 0
	IsTTY           [3]bool
	Rdev            [3]uint64
	CloseOnExec     [3]bool
	TtyNr           int // field 7 of /proc/self/stat: the controlling terminal
	Err             string
}

func helperReport() int {
	report := os.NewFile(helperReportFd, "report")
	var r slaveReport
	slave := os.NewFile(helperSlaveFd, "slave")
	if err := SetupSlave(slave); err != nil {
		r.Err = err.Error()
	} else {
		r.Pid = unix.Getpid()
		r.Sid, _ = unix.Getsid(0)
		r.Pgrp = unix.Getpgrp()
		r.TtySid, _ = unix.IoctlGetInt(0, unix.TIOCGSID)
		r.TtyPgrp, _ = unix.IoctlGetInt(0, unix.TIOCGPGRP)
		for fd := 0; fd <= 2; fd++ {
			r.IsTTY[fd] = IsTerminal(fd)
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil {
				r.Rdev[fd] = st.Rdev
			}
			fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			r.CloseOnExec[fd] = fl&unix.FD_CLOEXEC != 0
		}
		if b, err := os.ReadFile("/proc/self/stat"); err == nil {
			r.TtyNr = parseTtyNr(string(b))
		}
	}
	if err := json.NewEncoder(report).Encode(&r); err != nil {
		return 1
	}
	return 0
}

// parseTtyNr returns field 7 of /proc/self/stat; field 2 (comm) is in
// parentheses and may contain spaces, so fields are counted after the last ')'.
func parseTtyNr(stat string) int {
	i := len(stat) - 1
	for i >= 0 && stat[i] != ')' {
		i--
	}
	var state byte
	var ppid, pgrp, session, ttyNr int
	if _, err := fmt.Sscanf(stat[i+1:], " %c %d %d %d %d", &state, &ppid, &pgrp, &session, &ttyNr); err != nil {
		return -1
	}
	return ttyNr
}

// helperExec sets up the slave as a container init would and becomes
// /bin/sh -c "$BERTH_CONSOLE_TEST_SCRIPT".
func helperExec() int {
	slave := os.NewFile(helperSlaveFd, "slave")
	if err := SetupSlave(slave); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	slave.Close()
	err := unix.Exec("/bin/sh", []string{"sh", "-c", os.Getenv(helperScriptEnv)}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec /bin/sh:", err)
	return 1
}

// helperCmd returns a command re-running the test binary as the given helper,
// with slave as its descriptor 3.
func helperCmd(t *testing.T, mode string, slave *os.File, extra ...*os.File) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.ExtraFiles = append([]*os.File{slave}, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}
