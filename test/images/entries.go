package images

import (
	"archive/tar"
	"fmt"
	"time"
)

// entry is one tar entry of a synthetic layer: a header and, for a
// regular file, its content.
type entry struct {
	hdr  tar.Header
	data []byte
}

// Constructors of entries. Names are relative to the layer root, without a
// leading slash, as docker and buildkit write them; directories end in
// "/". Everything is root's unless owned says otherwise.

func dirEntry(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}}
}

func fileEntry(name string, mode int64, data string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: []byte(data)}
}

func symlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// hardlinkEntry names the file target, written earlier in the same layer,
// a second time.
func hardlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func charEntry(name string, mode, major, minor int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: mode, Devmajor: major, Devminor: minor}}
}

func fifoEntry(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: mode}}
}

// whiteoutEntry hides name (a file or a whole directory) of the layers
// below: an empty file ".wh.<base>" beside it, as the image spec and
// docker write it.
func whiteoutEntry(dir, base string) entry {
	name := ".wh." + base
	if dir != "" {
		name = dir + "/" + name
	}
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600}}
}

// opaqueEntry hides everything the layers below have in dir; it follows
// dir's own entry.
func opaqueEntry(dir string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: dir + "/.wh..wh..opq", Mode: 0o600}}
}

func (e entry) owned(uid, gid int) entry {
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

// xattr adds an extended attribute as the PAX record SCHILY.xattr.<name>,
// the form GNU tar, docker and containerd write and read.
func (e entry) xattr(name, value string) entry {
	records := map[string]string{}
	for k, v := range e.hdr.PAXRecords {
		records[k] = v
	}
	records["SCHILY.xattr."+name] = value
	e.hdr.PAXRecords = records
	return e
}

// writeEntries writes es in order with mtime, in PAX format: Go's writer
// then adds PAX records only where USTAR cannot hold a field (long or
// non-ASCII names, xattrs), as docker's does.
func writeEntries(tw *tar.Writer, es []entry, mtime time.Time) error {
	for _, e := range es {
		hdr := e.hdr
		hdr.ModTime = mtime
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("tar header %s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg && len(e.data) > 0 {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("tar content %s: %w", hdr.Name, err)
			}
		}
	}
	return nil
}
