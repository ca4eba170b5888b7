package specconv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/linux/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxIDFile bounds how much of /etc/passwd or /etc/group is read: the
// files come from the image, which may be hostile.
const maxIDFile = 16 << 20

// maxID is the largest uid or gid accepted, as runc: ids above it are
// (uid_t)-1 and the other values the kernel treats specially or maps
// nowhere.
const maxID = math.MaxInt32

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolvedUser is who the container's process runs as.
type resolvedUser struct {
	user specs.User
	home string
}

// resolveUser turns docker's --user (and --group-add) into ids, looking
// names up in the rootfs's /etc/passwd and /etc/group as docker (through
// runc's user package) does:
//
//   - "" is root; "name" and "uid" take the uid, primary gid and home of
//     the first matching passwd entry. A number matches only a uid, never a
//     name that looks like one. A number with no entry is used as it is
//     (gid 0, home "/"); a name with none is an error.
//   - ":group" picks the primary group the same way (a number with no
//     entry is used as it is), and then /etc/group memberships are not
//     added; without it, every group whose member list names the user is.
//   - each --group-add is a group name or number.
//
// The additional groups start with the primary one (CVE-2022-36109: a
// process must not be able to drop it with setgroups to escape a
// negative group permission).
func resolveUser(rootDir, spec string, groupAdd []string) (*resolvedUser, error) {
	root, err := openRoot(rootDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	passwd, err := readPasswd(root)
	if err != nil {
		return nil, err
	}
	userArg, groupArg, _ := strings.Cut(spec, ":")
	if userArg == "" {
		userArg = "0"
	}
	uid, numeric, err := parseID("user", userArg)
	if err != nil {
		return nil, err
	}
	u := passwdEntry{uid: uid, home: "/"}
	found := false
	for _, e := range passwd {
		if (numeric && e.uid == uid) || (!numeric && e.name == userArg) {
			u, found = e, true
			break
		}
	}
	if !found && !numeric {
		return nil, invalid("unable to find user %s: no matching entries in passwd file", userArg)
	}
	if u.home == "" {
		u.home = "/"
	}

	var groups []groupEntry
	if groupArg != "" || len(groupAdd) > 0 || found {
		if groups, err = readGroup(root); err != nil {
			return nil, err
		}
	}
	gid := u.gid
	var sgids []uint32
	if groupArg != "" {
		g, err := lookupGroup(groups, groupArg, false)
		if err != nil {
			return nil, err
		}
		gid = g
	} else if found {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.name {
					sgids = append(sgids, g.gid)
					break
				}
			}
		}
	}
	for _, ag := range groupAdd {
		g, err := lookupGroup(groups, ag, true)
		if err != nil {
			return nil, err
		}
		sgids = append(sgids, g)
	}
	out := &resolvedUser{home: u.home, user: specs.User{UID: u.uid, GID: gid}}
	seen := map[uint32]bool{}
	for _, g := range append([]uint32{gid}, sgids...) {
		if !seen[g] {
			seen[g] = true
			out.user.AdditionalGids = append(out.user.AdditionalGids, g)
		}
	}
	return out, nil
}

// lookupGroup finds a group by name, or by number when arg is one (and by
// name too for --group-add, as docker matches either there). A number
// with no entry is used as it is.
func lookupGroup(groups []groupEntry, arg string, byNameToo bool) (uint32, error) {
	gid, numeric, err := parseID("group", arg)
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if (numeric && g.gid == gid) || ((!numeric || byNameToo) && g.name == arg) {
			return g.gid, nil
		}
	}
	if !numeric {
		return 0, invalid("unable to find group %s: no matching entries in group file", arg)
	}
	return gid, nil
}

// parseID reports whether s is a decimal id and its value; a number out
// of range is an error rather than a name.
func parseID(what, s string) (id uint32, numeric bool, err error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, false, invalid("%s %s: uids and gids must be in range 0-%d", what, s, maxID)
	}
	return uint32(n), true, nil
}

// openRoot opens the rootfs directory for lookups beneath it.
func openRoot(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// readInRoot reads a small regular file of the rootfs, resolving path and
// every symlink on the way inside the rootfs (openat2 RESOLVE_IN_ROOT). A
// file that does not exist reads as empty. Anything but a regular file of
// at most maxIDFile bytes is refused: a FIFO would block the engine, a
// device (/dev/zero) would never end.
func readInRoot(root *os.File, path string) ([]byte, error) {
	f, err := rootfs.OpenInRoot(root, path)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the rootfs: %w", path, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, invalid("%s in the image is not a regular file (mode %#o)", path, st.Mode)
	}
	if st.Size > maxIDFile {
		return nil, invalid("%s in the image is %d bytes, more than the %d allowed", path, st.Size, maxIDFile)
	}
	// Reopen the O_PATH descriptor for reading: the kernel opens exactly
	// the inode it refers to, so nothing is looked up by name again.
	r, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s in the rootfs: %w", path, err)
	}
	defer r.Close()
	var st2 unix.Stat_t
	if err := unix.Fstat(int(r.Fd()), &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		return nil, fmt.Errorf("read %s in the rootfs: reopened file is not the one resolved", path)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxIDFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the rootfs: %w", path, err)
	}
	if len(data) > maxIDFile {
		return nil, invalid("%s in the image is more than %d bytes", path, maxIDFile)
	}
	return data, nil
}

// readPasswd parses the rootfs's /etc/passwd. Lines that are not
// name:password:uid:gid:gecos:home:shell with valid ids are skipped
// (runc would read a bad uid as 0, that is root).
func readPasswd(root *os.File) ([]passwdEntry, error) {
	data, err := readInRoot(root, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range dbLines(data) {
		if len(f) < 4 || f[0] == "" {
			continue
		}
		uid, ok1 := dbID(f[2])
		gid, ok2 := dbID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out, nil
}

// readGroup parses the rootfs's /etc/group: name:password:gid:members.
func readGroup(root *os.File) ([]groupEntry, error) {
	data, err := readInRoot(root, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range dbLines(data) {
		if len(f) < 3 || f[0] == "" {
			continue
		}
		gid, ok := dbID(f[2])
		if !ok {
			continue
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out, nil
}

// dbLines splits a colon-separated database into fields, without blank
// lines and comments.
func dbLines(data []byte) [][]string {
	var out [][]string
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		out = append(out, strings.Split(s, ":"))
	}
	return out
}

func dbID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxID {
		return 0, false
	}
	return uint32(n), true
}
