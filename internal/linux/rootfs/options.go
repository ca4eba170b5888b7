package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Options is a spec mount's option list split by how the kernel takes it.
type Options struct {
	Flags       uintptr // mount(2) flags for the mount itself
	ClearFlags  uintptr // flags explicitly turned off (rw, suid, ...)
	Propagation []uintptr
	// Recursive attributes (rro, rnosuid, ...) applied with mount_setattr(2)
	// and AT_RECURSIVE.
	RecAttrSet, RecAttrClr uint64
	Bind, Recursive        bool
	IDMap, RecursiveIDMap  bool
	// Data is what the filesystem itself parses, comma-separated.
	Data string
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var flagOpts = map[string]flagOpt{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationOpts = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type attrOpt struct {
	clear bool
	attr  uint64
}

var recAttrOpts = map[string]attrOpt{
	"rro":            {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":            {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {false, unix.MOUNT_ATTR_NODEV},
	"rdev":           {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {false, unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {false, unix.MOUNT_ATTR_NOATIME},
	"ratime":         {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {false, unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// ignoredOpts are runc extensions that peers pass and that have no kernel
// meaning here.
var ignoredOpts = map[string]bool{
	"tmpcopyup":    true,
	"notmpcopyup":  true,
	"copy-symlink": true,
	"nocopy":       true,
	"z":            true,
	"Z":            true,
	"U":            true,
}

// ParseOptions splits a spec mount's options.
func ParseOptions(opts []string) Options {
	var o Options
	var data []string
	for _, opt := range opts {
		switch opt {
		case "bind":
			o.Bind = true
			continue
		case "rbind":
			o.Bind, o.Recursive = true, true
			continue
		case "idmap":
			o.IDMap = true
			continue
		case "ridmap":
			o.IDMap, o.RecursiveIDMap = true, true
			continue
		}
		if f, ok := flagOpts[opt]; ok {
			if f.clear {
				o.Flags &^= f.flag
				o.ClearFlags |= f.flag
			} else {
				o.Flags |= f.flag
				o.ClearFlags &^= f.flag
			}
			continue
		}
		if p, ok := propagationOpts[opt]; ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if a, ok := recAttrOpts[opt]; ok {
			if a.clear {
				o.RecAttrClr |= a.attr
				o.RecAttrSet &^= a.attr
			} else {
				o.RecAttrSet |= a.attr
				o.RecAttrClr &^= a.attr
			}
			continue
		}
		if ignoredOpts[opt] {
			continue
		}
		data = append(data, opt)
	}
	o.Data = strings.Join(data, ",")
	return o
}

// Attrs converts mount(2) flags into mount_setattr(2) attributes, for bind
// mounts created with open_tree(2).
func Attrs(flags uintptr) (set, clr uint64) {
	pairs := []struct {
		flag uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	}
	for _, p := range pairs {
		if flags&p.flag != 0 {
			set |= p.attr
		}
	}
	// The atime modes are one field: set exactly one.
	switch {
	case flags&unix.MS_NOATIME != 0:
		set |= unix.MOUNT_ATTR_NOATIME
		clr |= unix.MOUNT_ATTR__ATIME
	case flags&unix.MS_STRICTATIME != 0:
		set |= unix.MOUNT_ATTR_STRICTATIME
		clr |= unix.MOUNT_ATTR__ATIME
	case flags&unix.MS_RELATIME != 0:
		set |= unix.MOUNT_ATTR_RELATIME
		clr |= unix.MOUNT_ATTR__ATIME
	}
	return set, clr
}

// MountOptionNames lists every option ParseOptions understands, for the
// `features` command.
func MountOptionNames() []string {
	names := []string{"bind", "rbind", "idmap", "ridmap"}
	for n := range flagOpts {
		names = append(names, n)
	}
	for n := range propagationOpts {
		names = append(names, n)
	}
	for n := range recAttrOpts {
		names = append(names, n)
	}
	for n := range ignoredOpts {
		names = append(names, n)
	}
	return names
}

// Propagation parses the spec's rootfsPropagation (empty: 0, the runtime's
// default).
func Propagation(s string) (uintptr, error) {
	if s == "" {
		return 0, nil
	}
	p, ok := propagationOpts[s]
	if !ok {
		return 0, fmt.Errorf("unknown rootfsPropagation %q", s)
	}
	return p, nil
}
