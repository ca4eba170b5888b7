package archive

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

var (
	// ErrBreakout is the class of entries whose name or hardlink target
	// climbs above the root with "..".
	ErrBreakout = errors.New("path leaves the layer root")
	// ErrInvalid is the class of entries Apply refuses: a non-directory
	// naming the root, names longer than PATH_MAX, unknown entry types,
	// ids or device numbers out of range, malformed whiteouts.
	ErrInvalid = errors.New("invalid tar entry")
)

// EntryError is an error of Apply about one tar entry.
type EntryError struct {
	Index int64  // 0-based position of the entry in the tar
	Name  string // the name as it is in the tar
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("tar entry %d %q: %v", e.Index, e.Name, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// pathMax is the kernel's PATH_MAX: no name longer than it can be resolved,
// and refusing it up front keeps a hostile 1 MiB PAX name from costing a
// walk.
const pathMax = 4096

// cleanName turns a tar name into a path relative to the root: "." for the
// root itself, otherwise slash-separated with no "", "." or ".." component.
// A leading "/" is dropped, as GNU tar does; a name that climbs above the
// root is refused with ErrBreakout rather than clamped, so a hostile layer
// fails loudly instead of landing somewhere its author did not name.
func cleanName(name string) (string, error) {
	if len(name) > pathMax {
		return "", fmt.Errorf("%w: name is %d bytes, longer than %d", ErrInvalid, len(name), pathMax)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: name contains a NUL byte", ErrInvalid)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %q", ErrBreakout, name)
	}
	return p, nil
}

// splitName splits a cleaned name into its parent ("." at the top) and its
// last component.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	return p[:i], p[i+1:]
}
