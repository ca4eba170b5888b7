package seccomp

// Handing the SCMP_ACT_NOTIFY listener to the agent at listenerPath
// (runtime-spec config-linux.md, "seccomp"; the same wire format as runc).
// The runtime prepares everything; the stage (internal/runtime/initstage,
// C) only loads the program and sends:
//
//	runtime (host side)              stage (container init or exec)   agent at listenerPath
//	  conn := DialListener(path)     ---------- connect ---------->   accept
//	     (the runtime's mount namespace and credentials, before the
//	      container exists)
//	  passes conn to the stage as
//	  _BERTH_SECCOMPFD  ----------->
//	  state := ProcessState(...)
//	  puts prog, flags and state
//	  into the plan  -------------->
//	                                 fd := seccomp(SET_MODE_FILTER)
//	                                 sendmsg(conn)  ---- sendmsg -->   recvmsg
//	                                   data: ContainerProcessState JSON, fds: ["seccompFd"]
//	                                   SCM_RIGHTS: [fd]  (both in one sendmsg)
//	                                 close(fd); close(conn) -- EOF ->  NotifReceive / NotifRespond
//	                                 execve(program)                   ... for the container's life
//
// Until the agent holds the listener nobody can answer a notification, so
// the stage must make no notified syscall before its sendmsg returns;
// Compile refuses the two that cannot be avoided (see doc.go).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sunPathMax is the size of sockaddr_un.sun_path on Linux.
const sunPathMax = 108

// ProcessState marshals the message sent with the listener: the container's
// state, pid (the init's pid as the runtime sees it, in the runtime's pid
// namespace, not 1) and listenerMetadata, with fds naming the one
// descriptor that travels with it.
func ProcessState(state specs.State, pid int, metadata string) ([]byte, error) {
	b, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      pid,
		Metadata: metadata,
		State:    state,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal seccomp container process state: %w", err)
	}
	return b, nil
}

// DialListener connects to the unix stream socket at path (the spec's
// listenerPath) and returns it as a blocking, O_CLOEXEC *os.File. Paths
// longer than sun_path are reached through /proc/self/fd.
//
// The runtime calls it before the container exists, from its own mount
// namespace and with its own credentials, so the path is always reachable
// and the connection does not depend on what the container may see or do.
func DialListener(path string) (*os.File, error) {
	target := path
	if len(path) >= sunPathMax {
		dir, base := filepath.Dir(path), filepath.Base(path)
		dfd, err := openPath(dir)
		if err != nil {
			return nil, fmt.Errorf("connect to seccomp listener %s: %w", path, err)
		}
		defer unix.Close(dfd)
		target = "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
		if len(target) >= sunPathMax {
			return nil, fmt.Errorf("connect to seccomp listener %s: socket name %q is too long", path, base)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("connect to seccomp listener %s: %w", path, os.NewSyscallError("socket", err))
	}
	// An AF_UNIX connect interrupted while waiting for room in the
	// listener's backlog has not connected, so it is simply retried.
	sa := &unix.SockaddrUnix{Name: target}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to seccomp listener %s: %w", path, os.NewSyscallError("connect", err))
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openPath(dir string) (int, error) {
	for {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			if err != nil {
				return -1, &os.PathError{Op: "open", Path: dir, Err: err}
			}
			return fd, nil
		}
	}
}
