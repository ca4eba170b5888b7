package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/probe/report"
)

func cmdExit(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 || n > 255 {
		fmt.Fprintf(stderr, "probe: exit status %q is not 0-255\n", arg)
		return usage()
	}
	return n
}

// parseSeconds accepts a non-negative decimal number of seconds or "inf".
func parseSeconds(arg string) (time.Duration, bool) {
	if arg == "inf" || arg == "infinity" {
		return time.Duration(math.MaxInt64), true
	}
	s, err := strconv.ParseFloat(arg, 64)
	if err != nil || s < 0 || math.IsNaN(s) || s > float64(math.MaxInt64/int64(time.Second)) {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// stopSignals returns a channel that receives SIGTERM and SIGINT. The
// handler matters most as PID 1 of a container: there the kernel drops
// signals that have no handler, so without it SIGTERM would do nothing.
//
// With PROBE_READY set, it then writes "ready" to stderr: the Go runtime
// catches SIGTERM from its start, before Notify, so a watcher of SigCgt
// cannot tell when a SIGTERM stops being fatal; this line can.
func stopSignals() chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	if os.Getenv("PROBE_READY") != "" {
		fmt.Fprintln(stderr, "ready")
	}
	return ch
}

func cmdSleep(arg string) int {
	d, ok := parseSeconds(arg)
	if !ok {
		fmt.Fprintf(stderr, "probe: bad duration %q\n", arg)
		return usage()
	}
	stop := stopSignals()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-stop:
	}
	return 0
}

func cmdCat(path string) int {
	f, err := openFile(path, unix.O_RDONLY, 0)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if _, err := io.Copy(os.Stdout, f); err != nil {
		return fail(fmt.Errorf("copy %s to stdout: %w", path, err))
	}
	return 0
}

func cmdWrite(path, content string) int {
	err := writeFile(path, content)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

func writeFile(path, content string) error {
	f, err := openFile(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmdLs(path string) int {
	dir, err := openFile(path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fail(err)
	}
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return fail(fmt.Errorf("read directory %s: %w", path, err))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// ReadDir on an *os.File returns directory order; sort for stable tests.
	slices.Sort(names)
	for _, n := range names {
		fmt.Println(n)
	}
	return 0
}

func cmdStat(path string) int {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(&os.PathError{Op: "lstat", Path: path, Err: err})
	}
	out := report.Stat{Lstat: fileInfo(&st)}
	if out.Lstat.Type == "symlink" {
		out.Lstat.Link, _ = os.Readlink(path)
	}
	var fst unix.Stat_t
	if err := unix.Stat(path, &fst); err != nil {
		out.FollowError = (&os.PathError{Op: "stat", Path: path, Err: err}).Error()
	} else {
		fi := fileInfo(&fst)
		out.Stat = &fi
	}
	return printJSON(out)
}

func fileInfo(st *unix.Stat_t) report.FileInfo {
	typ := "unknown"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		typ = "file"
	case unix.S_IFDIR:
		typ = "dir"
	case unix.S_IFLNK:
		typ = "symlink"
	case unix.S_IFCHR:
		typ = "char"
	case unix.S_IFBLK:
		typ = "block"
	case unix.S_IFIFO:
		typ = "fifo"
	case unix.S_IFSOCK:
		typ = "socket"
	}
	return report.FileInfo{
		Mode:      st.Mode,
		Perm:      fmt.Sprintf("%04o", st.Mode&0o7777),
		Type:      typ,
		UID:       st.Uid,
		GID:       st.Gid,
		RdevMajor: unix.Major(st.Rdev),
		RdevMinor: unix.Minor(st.Rdev),
		Size:      st.Size,
	}
}

func cmdSpin() int {
	stop := stopSignals()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return 0
		case <-tick.C:
			fmt.Println(n)
		}
	}
}

func cmdTTY() int {
	var out report.Terminal
	for fd := range 3 {
		out.IsTTY[fd] = isTerminal(fd)
	}
	for fd := range 3 {
		if !out.IsTTY[fd] {
			continue
		}
		if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil {
			out.Rows, out.Cols = ws.Row, ws.Col
			break
		}
	}
	return printJSON(out)
}

func cmdMknod(path string) int {
	err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	return printErrno(err)
}

func cmdOpen(path, mode string) int {
	flags := map[string]int{"r": unix.O_RDONLY, "w": unix.O_WRONLY, "rw": unix.O_RDWR}
	fl, ok := flags[mode]
	if !ok {
		fmt.Fprintf(stderr, "probe: open mode %q is not r, w or rw\n", mode)
		return usage()
	}
	fd, err := unix.Open(path, fl|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return printErrno(err)
}

// printErrno prints "ok" for nil, else the errno's name ("EPERM"), or the
// error text when it is not an errno.
func printErrno(err error) int {
	if err == nil {
		fmt.Println("ok")
		return 0
	}
	var errno unix.Errno
	if errors.As(err, &errno) && unix.ErrnoName(errno) != "" {
		fmt.Println(unix.ErrnoName(errno))
	} else {
		fmt.Println(err)
	}
	return 1
}
