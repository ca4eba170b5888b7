package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openFile opens path with open(2) and wraps the descriptor with os.NewFile.
// Unlike os.OpenFile this never registers the descriptor with the Go
// poller, so the runtime creates no epoll descriptor or eventfd that would
// show up in the report's descriptor list (see doc.go).
func openFile(path string, flags int, perm uint32) (*os.File, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// readFile is os.ReadFile through openFile.
func readFile(path string) ([]byte, error) {
	f, err := openFile(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
