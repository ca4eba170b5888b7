package selfexe

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// seals forbid every change to the memfd's content and to the seals
// themselves. F_SEAL_FUTURE_WRITE is unnecessary once F_SEAL_WRITE is set.
const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// Clone returns a sealed memfd holding a copy of the running binary. The
// descriptor is close-on-exec; execute it through Path.
//
// Postconditions: the returned file's seals include F_SEAL_WRITE and
// F_SEAL_SEAL, which Verify checks.
func Clone() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open self executable: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat self executable: %w", err)
	}

	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Kernels before 6.3 do not know MFD_EXEC; memfds are executable there.
		fd, err = unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", os.NewSyscallError("memfd_create", err))
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")

	// sendfile keeps the copy in the kernel: the binary is in the page cache
	// and copying it costs a fraction of a millisecond.
	size := st.Size()
	var off int64
	for off < size {
		n, err := unix.Sendfile(fd, int(src.Fd()), &off, int(size-off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			dst.Close()
			return nil, fmt.Errorf("copy self executable: %w", os.NewSyscallError("sendfile", err))
		}
		if n == 0 {
			break
		}
	}
	if off != size {
		// A short copy must not be sealed and executed.
		if _, err := io.Copy(io.Discard, src); err != nil || off != size {
			dst.Close()
			return nil, fmt.Errorf("copy self executable: copied %d of %d bytes", off, size)
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal self executable: %w", os.NewSyscallError("fcntl", err))
	}
	return dst, nil
}

// Verify reports whether f carries the seals Clone sets.
func Verify(f *os.File) error {
	got, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return fmt.Errorf("get seals: %w", os.NewSyscallError("fcntl", err))
	}
	if got&seals != seals {
		return fmt.Errorf("self executable copy is not sealed (seals %#x)", got)
	}
	return nil
}

// Path is the name execve uses to run f: the kernel resolves it before it
// closes the close-on-exec descriptor.
func Path(f *os.File) string {
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd())
}
