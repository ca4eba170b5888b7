package initproc

import (
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/linux/console"
	"github.com/berth-project/berth/internal/linux/procattr"
	"github.com/berth-project/berth/internal/runtime/syncmsg"
	"golang.org/x/sys/unix"
)

// runExec sets up a process joining a running container; the nsenter
// constructor and the parent already put it in every namespace, the parent
// in the cgroups. It returns only on failure.
func runExec(sock *os.File, cfg *syncmsg.Config) error {
	consoleSock, err := envFD("_BERTH_CONSOLEFD")
	if err != nil {
		return err
	}
	// The initial affinity covers the set-up, before the final one is
	// applied right before execve.
	if a := cfg.Process.ExecCPUAffinity; a != nil {
		if err := procattr.Affinity(a.Initial); err != nil {
			return step("exec CPU affinity", err)
		}
	}
	if cfg.Process.Terminal {
		if consoleSock == nil {
			return step("console", fmt.Errorf("no console socket"))
		}
		// The container's /dev/ptmx; console.OpenPty checks that it is a
		// pty multiplexer, whatever the container made of the path.
		master, slave, err := console.OpenPty("/dev/ptmx")
		if err != nil {
			return step("console", err)
		}
		if s := cfg.Process.ConsoleSize; s != nil {
			console.SetWinsize(int(master.Fd()), &unix.Winsize{Row: uint16(s.Height), Col: uint16(s.Width)})
		}
		if err := console.SendFd(consoleSock, "/dev/ptmx", master); err != nil {
			return step("console", fmt.Errorf("send pty master: %w", err))
		}
		master.Close()
		consoleSock.Close()
		if err := console.SetupSlave(slave); err != nil {
			return step("set up terminal", err)
		}
		slave.Close()
	}
	proc, err := prepareProcess(cfg)
	if err != nil {
		return err
	}
	if err := syncmsg.Write(sock, &syncmsg.Message{Type: syncmsg.TypeReady}); err != nil {
		return err
	}
	// On success execve closes the socket (close-on-exec): the parent reads
	// EOF. On failure the error goes the same way.
	return finalize(cfg, proc)
}
