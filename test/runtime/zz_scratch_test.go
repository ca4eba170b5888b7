package runtime_test

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/test/fixture"
	"github.com/berth-project/berth/test/runtimetest"
)

func TestScratchCreated(t *testing.T) {
	r := runtimetest.New(t)
	b := fixture.Bundle(t)
	b.Spec.Process.Args = []string{"/bin/probe", "report"}
	c := createContainer(t, r, b, "scratch-created", nil)
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.pid))
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", c.pid, e.Name()))
		t.Logf("fd %s -> %s", e.Name(), l)
	}
	for _, n := range []string{"exe", "cwd", "root"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/%s", c.pid, n))
		t.Logf("%s -> %s %v", n, l, err)
	}
	_, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", c.pid), os.O_WRONLY, 0)
	t.Logf("open exe w: %v", err)
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", c.pid), os.O_RDWR, 0)
	t.Logf("open exe rw: %v", err)
	f, err := os.Open(fmt.Sprintf("/proc/%d/exe", c.pid))
	t.Logf("open exe r: %v", err)
	if err == nil {
		s, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		t.Logf("seals %#x %v", s, err)
		_, err = unix.Pwrite(int(f.Fd()), []byte("x"), 0)
		t.Logf("pwrite %v", err)
		g, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_WRONLY, 0)
		t.Logf("reopen w %v", err)
		if err == nil { _, err = g.Write([]byte("x")); t.Logf("write %v", err) }
	}
	var st1, st2 unix.Stat_t
	unix.Stat(fmt.Sprintf("/proc/%d/cwd", c.pid), &st1)
	unix.Stat(b.Rootfs, &st2)
	t.Logf("cwd %d/%d rootfs %d/%d", st1.Dev, st1.Ino, st2.Dev, st2.Ino)
	r.Must("start", c.id)
	r.WaitStatus(c.id, "stopped", 10e9)
	o, e := c.output(t)
	t.Logf("%d %d", len(o), len(e))
}
