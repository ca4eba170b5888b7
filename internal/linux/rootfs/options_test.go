package rootfs

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	o := ParseOptions([]string{"rbind", "ro", "nosuid", "rw", "rprivate", "rro", "size=64k", "mode=755", "tmpcopyup"})
	if !o.Bind || !o.Recursive {
		t.Error("rbind not recognised")
	}
	if o.Flags&unix.MS_RDONLY != 0 || o.ClearFlags&unix.MS_RDONLY == 0 {
		t.Error("a later rw must win over ro")
	}
	if o.Flags&unix.MS_NOSUID == 0 {
		t.Error("nosuid lost")
	}
	if len(o.Propagation) != 1 || o.Propagation[0] != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("propagation %v", o.Propagation)
	}
	if o.RecAttrSet != unix.MOUNT_ATTR_RDONLY {
		t.Errorf("recursive attrs %#x", o.RecAttrSet)
	}
	if o.Data != "size=64k,mode=755" {
		t.Errorf("data %q", o.Data)
	}
}

func TestAttrs(t *testing.T) {
	set, clr := Attrs(unix.MS_RDONLY | unix.MS_NOEXEC | unix.MS_STRICTATIME)
	if set&unix.MOUNT_ATTR_RDONLY == 0 || set&unix.MOUNT_ATTR_NOEXEC == 0 || set&unix.MOUNT_ATTR_STRICTATIME == 0 {
		t.Errorf("set %#x", set)
	}
	if clr != unix.MOUNT_ATTR__ATIME {
		t.Errorf("clr %#x: the atime field must be cleared before one mode is set", clr)
	}
}
