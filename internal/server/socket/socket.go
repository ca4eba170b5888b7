package socket

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Mode is the permission of every API socket.
const Mode = 0o660

// ParseHost turns a -H value into the path of a unix socket. Accepted:
// "unix:///path" and a bare absolute path; "tcp://", "fd://" and others
// are refused with the reason.
func ParseHost(host string) (string, error) {
	if strings.HasPrefix(host, "/") {
		return filepath.Clean(host), nil
	}
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("invalid host %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		p := u.Path
		if u.Host != "" {
			// "unix://relative/path" parses the first element as host.
			p = u.Host + u.Path
		}
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("invalid host %q: the socket path must be absolute", host)
		}
		return filepath.Clean(p), nil
	case "tcp", "http", "https":
		return "", fmt.Errorf("invalid host %q: berthd does not serve the API over TCP: it is root-equivalent and needs TLS client authentication, which berthd does not have yet; use a unix socket", host)
	case "":
		return "", fmt.Errorf("invalid host %q: want unix:///path/to/socket", host)
	}
	return "", fmt.Errorf("invalid host %q: unsupported scheme %q, want unix", host, u.Scheme)
}

// GroupID returns the gid of name. The empty name means the default: the
// "berth" group where it exists, else root's group.
func GroupID(name string) (int, error) {
	lookup := name
	if lookup == "" {
		lookup = "berth"
	}
	g, err := user.LookupGroup(lookup)
	if err != nil {
		if name == "" {
			return 0, nil
		}
		if n, convErr := strconv.Atoi(name); convErr == nil && n >= 0 {
			return n, nil
		}
		return 0, fmt.Errorf("socket group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// Listen creates the unix socket at path, mode 0660, owned by root:gid.
// A socket file left by a previous daemon is removed; any other file at
// path is an error. The directory is created 0711 if missing.
func Listen(path string, gid int) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen on %s: a file that is not a socket is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Until these two calls the socket has the umask's mode, which
	// leaves connecting (write permission) to its owner, root.
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, Mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, nil
}
