package vm

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// cpioWriter writes the "newc" cpio format, the one the kernel unpacks as
// an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
// per entry a 110-byte ASCII header of hex fields, the NUL-terminated name
// padded to four bytes, the data padded to four bytes; "TRAILER!!!" ends
// the archive. Only what an initramfs needs: directories, regular files,
// symlinks and device nodes, owned by root, with fixed times so the archive is a
// function of its content.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

const (
	cpioModeDir  = 0o040000
	cpioModeFile = 0o100000
	cpioModeLink = 0o120000
	cpioModeChar = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, rdev [2]int, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	nlink := 1
	if mode&0o170000 == cpioModeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name)+1, 0)
	c.write([]byte(hdr + name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string, perm fs.FileMode) {
	c.entry(name, cpioModeDir|uint32(perm.Perm()), [2]int{}, nil)
}

// File adds a regular file.
func (c *cpioWriter) File(name string, perm fs.FileMode, data []byte) {
	c.entry(name, cpioModeFile|uint32(perm.Perm()), [2]int{}, data)
}

// Symlink adds a symbolic link to target.
func (c *cpioWriter) Symlink(name, target string) {
	c.entry(name, cpioModeLink|0o777, [2]int{}, []byte(target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor int) {
	c.entry(name, cpioModeChar|uint32(perm.Perm()), [2]int{major, minor}, nil)
}

// Close writes the trailer and reports the first error of any write.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, [2]int{}, nil)
	if c.err != nil {
		return fmt.Errorf("write cpio archive: %w", c.err)
	}
	return nil
}
