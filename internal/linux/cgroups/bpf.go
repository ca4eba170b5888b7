package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bpf(2) calls the device program needs: load, query, attach,
// detach, and the two that identify a program already attached. The
// argument structs are the relevant members of union bpf_attr
// (include/uapi/linux/bpf.h); the kernel takes a prefix of the union and
// zero-fills the rest.

// progName names berth's device programs, so that an update replaces its
// own program and leaves any other one attached to the cgroup alone.
const progName = "berth_devices"

// bpfPtr is the kernel's __aligned_u64 holding a user pointer. Keeping it
// a Go pointer, not a number, keeps what it points to alive and lets a
// stack copy update it (a number would go stale if the buffer lived on a
// stack that grew before the call). It has the kernel's size on 64-bit
// machines only; setDeviceProgram refuses to run elsewhere.
type bpfPtr struct {
	p unsafe.Pointer
}

// bpfPtrOK tells whether bpfPtr matches __aligned_u64 here.
const bpfPtrOK = unsafe.Sizeof(bpfPtr{}) == 8

type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              bpfPtr
	license            bpfPtr
	logLevel           uint32
	logSize            uint32
	logBuf             bpfPtr
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     bpfPtr
	progCnt     uint32
	_           uint32
}

type getFdByIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

type objInfoAttr struct {
	bpfFd   uint32
	infoLen uint32
	info    bpfPtr
}

// progInfoNameOff and progInfoLen locate name[16] in struct
// bpf_prog_info, after type, id, tag[8], two lengths, two pointers,
// load_time, created_by_uid, nr_map_ids and map_ids.
const (
	progInfoNameOff = 64
	progInfoLen     = progInfoNameOff + 16
)

// bpfCall makes one bpf(2) call, repeated when a signal interrupted it:
// EINTR, or for BPF_PROG_LOAD, EAGAIN, which the verifier returns when a
// signal is pending (Go's preemption signals come every 10 ms, and under
// emulation verifying takes longer than that). The EAGAIN retries are
// bounded, for a kernel that would mean something else by it.
func bpfCall(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	for again := 0; ; {
		r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD && again < 100 {
			again++
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// loadDeviceProgram loads the program and returns its descriptor. When
// the verifier refuses it, the load is repeated with a log so that the
// error says why.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	license := []byte("\x00") // no GPL-only helpers are called
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    bpfPtr{p: unsafe.Pointer(&prog[0])},
		license:  bpfPtr{p: unsafe.Pointer(&license[0])},
	}
	copy(attr.progName[:], progName)
	fd, err := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), bpfPtr{p: unsafe.Pointer(&log[0])}
		if fd, err2 := bpfCall(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 == nil {
			return fd, nil // refused once, accepted now: take it
		}
		if n := bytes.IndexByte(log, 0); n > 0 {
			return -1, fmt.Errorf("load device program: %w: verifier: %s", os.NewSyscallError("bpf", err), bytes.TrimSpace(log[:n]))
		}
	}
	return -1, fmt.Errorf("load device program: %w", os.NewSyscallError("bpf", err))
}

// attachedDevicePrograms returns descriptors of berth's device programs
// attached directly to the cgroup (not inherited from its ancestors).
func attachedDevicePrograms(cg int) ([]int, error) {
	ids := make([]uint32, 64)
	attr := progQueryAttr{
		targetFd:   uint32(cg),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    bpfPtr{p: unsafe.Pointer(&ids[0])},
		progCnt:    uint32(len(ids)),
	}
	if _, err := bpfCall(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return nil, fmt.Errorf("query device programs: %w", os.NewSyscallError("bpf", err))
	}
	var fds []int
	for _, id := range ids[:attr.progCnt] {
		fd, err := progFdByID(id)
		if errors.Is(err, unix.ENOENT) {
			continue // detached meanwhile
		}
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		name, err := progNameOf(fd)
		if err != nil || name != progName {
			unix.Close(fd)
			if err != nil {
				closeAll(fds)
				return nil, err
			}
			continue
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func progFdByID(id uint32) (int, error) {
	attr := getFdByIDAttr{id: id}
	fd, err := bpfCall(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, fmt.Errorf("open device program %d: %w", id, os.NewSyscallError("bpf", err))
	}
	return fd, nil
}

func progNameOf(fd int) (string, error) {
	info := make([]byte, progInfoLen)
	attr := objInfoAttr{bpfFd: uint32(fd), infoLen: uint32(len(info)), info: bpfPtr{p: unsafe.Pointer(&info[0])}}
	if _, err := bpfCall(unix.BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return "", fmt.Errorf("read device program info: %w", os.NewSyscallError("bpf", err))
	}
	name := info[progInfoNameOff:progInfoLen]
	if n := bytes.IndexByte(name, 0); n >= 0 {
		name = name[:n]
	}
	return string(name), nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func attachProgram(cg, prog int, flags uint32, replace int) error {
	attr := progAttachAttr{
		targetFd:    uint32(cg),
		attachBpfFd: uint32(prog),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: flags,
	}
	if replace >= 0 {
		attr.replaceBpfFd = uint32(replace)
	}
	if _, err := bpfCall(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return os.NewSyscallError("bpf", err)
	}
	return nil
}

func detachProgram(cg, prog int) error {
	attr := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE}
	if _, err := bpfCall(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return os.NewSyscallError("bpf", err)
	}
	return nil
}

// setDeviceProgram enforces the rules on a cgroup2 directory with a new
// device program, in place of the one a previous Set attached.
//
// Programs are attached with BPF_F_ALLOW_MULTI, so that a program an
// ancestor (systemd, say) attached keeps running too: the kernel allows an
// access only if every program on the path from the root agrees. With one
// old program of ours, BPF_F_REPLACE swaps it atomically (Linux 5.6+), and
// the container never runs under neither or both. Otherwise the new one is
// attached before the old ones are detached: for that instant both apply,
// which can refuse but never allow too much.
//
// The cgroup holds the attached program; the descriptors are closed on
// return.
func setDeviceProgram(dir string, rules []devRule) error {
	if !bpfPtrOK {
		return fmt.Errorf("set devices: cgroup2 device programs are implemented for 64-bit machines only: %w", errors.ErrUnsupported)
	}
	prog, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	fd, err := loadDeviceProgram(prog)
	if err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	defer unix.Close(fd)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set devices: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return fmt.Errorf("set devices on %s: %w", dir, err)
	}
	defer closeAll(old)
	if len(old) == 1 {
		err := attachProgram(cg, fd, unix.BPF_F_ALLOW_MULTI|unix.BPF_F_REPLACE, old[0])
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("set devices: attach device program to %s: %w", dir, err)
		}
		// A kernel without BPF_F_REPLACE: attach, then detach.
	}
	if err := attachProgram(cg, fd, unix.BPF_F_ALLOW_MULTI, -1); err != nil {
		return fmt.Errorf("set devices: attach device program to %s: %w", dir, err)
	}
	for _, o := range old {
		if err := detachProgram(cg, o); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("set devices: detach the previous device program from %s: %w", dir, err)
		}
	}
	return nil
}
