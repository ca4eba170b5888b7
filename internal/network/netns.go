package network

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on an OS thread that has joined the network namespace
// at path, then returns the thread to its own namespace. Sockets fn
// creates stay in the joined namespace after it returns. A thread that
// cannot return stays locked, and Go ends it with the goroutine, so no
// other goroutine ever runs in a container's namespace. (Letting every
// thread end is not enough: Go never ends the main thread, which would
// stay in the container's namespace and keep it, and its veth, alive.)
func inNetNS(path string, fn func() error) error {
	ns, err := os.Open(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer own.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- &os.PathError{Op: "setns", Path: path, Err: err}
			return
		}
		err = fn()
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// LoopbackUp brings up the loopback interface of the network namespace at
// path. A new namespace has lo down; docker brings it up for every
// container, --network none included.
func LoopbackUp(path string) error {
	return inNetNS(path, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("get flags of lo: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("bring lo up: %w", err)
		}
		return nil
	})
}

// makeNetNS makes a new network namespace and keeps it alive by a bind
// mount of it at path (a new file), as `ip netns add` does: the
// namespace outlives berthd until removeNetNS. It is made at background
// priority: pool entries are.
func makeNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is never given back to the Go scheduler: it ends
		// with the goroutine, and with it its namespace and priority.
		runtime.LockOSThread()
		lowerThreadPriority()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- os.NewSyscallError("unshare CLONE_NEWNET", err)
			return
		}
		err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if err != nil {
			err = &os.PathError{Op: "bind-mount a network namespace at", Path: path, Err: err}
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetNS undoes makeNetNS: the namespace goes with its last user
// (and its interfaces with it). A path that is not mounted any more is
// only removed.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return &os.PathError{Op: "unmount", Path: path, Err: err}
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// deleteLink deletes the calling thread's network namespace's interface
// named name (RTM_DELLINK; a veth takes its peer with it). An interface
// that is not there is not an error: a partial ADD may not have made it.
func deleteLink(name string) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	unix.Close(fd)
	if err == unix.ENODEV {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index of %s: %w", name, err)
	}
	index := int32(ifr.Uint32())
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(nl)
	const hdr, info = unix.SizeofNlMsghdr, unix.SizeofIfInfomsg
	msg := make([]byte, hdr+info)
	*(*unix.NlMsghdr)(unsafe.Pointer(&msg[0])) = unix.NlMsghdr{
		Len: uint32(len(msg)), Type: unix.RTM_DELLINK, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: 1,
	}
	*(*unix.IfInfomsg)(unsafe.Pointer(&msg[hdr])) = unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: index}
	if err := unix.Sendto(nl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(nl, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != 1 || len(m.Data) < 4 {
				continue
			}
			switch errno := -*(*int32)(unsafe.Pointer(&m.Data[0])); errno {
			case 0, int32(unix.ENODEV):
				return nil
			default:
				return fmt.Errorf("delete %s: %w", name, unix.Errno(errno))
			}
		}
	}
}
