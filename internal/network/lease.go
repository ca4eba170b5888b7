package network

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// host-local's store, which berthd reads and, for two cases, changes
// itself. berth builds host-local from a pinned version of the upstream
// plugins (hack/cni-plugins.sh) and points its dataDir at
// <exec-root>/network/ipam, so the store is berthd's own directory in a
// known format:
//
//	ipam/<network ID>/<address>            one lease: "<container ID>\r\n<interface>"
//	ipam/<network ID>/last_reserved_ip.<N> where the next search starts
//	ipam/<network ID>/lock                 flock(2)ed by host-local around every change
//
// The two cases are a pool entry's release (pool.go), where the plugin's
// DEL would be one more Go program started on every pooled run for what
// is a file's removal, and Reconcile's sweep of leases nothing owns.
// Everything else (every ADD, and the DEL of an attachment made for a
// container) goes through the plugin. TestReleaseLeasesAsHostLocal keeps
// the format honest: it makes leases with the plugin and releases them
// here.

// leaseFile is one lease of a network's store.
type leaseFile struct {
	path                string
	containerID, ifName string
}

// readLeases returns the leases of the network's store; none when it has
// no store. Files that are not leases (the lock, last_reserved_ip.N)
// are skipped.
func readLeases(dir string) ([]leaseFile, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []leaseFile
	for _, de := range des {
		if _, err := netip.ParseAddr(de.Name()); err != nil || !de.Type().IsRegular() {
			continue
		}
		l, err := readLease(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // released meanwhile
		}
		out = append(out, l)
	}
	return out, nil
}

// readLease reads one lease file.
func readLease(path string) (leaseFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return leaseFile{}, err
	}
	// Before the interface was recorded (host-local before 0.8), a
	// lease held the container ID alone.
	id, ifName, _ := bytes.Cut(data, []byte("\r\n"))
	return leaseFile{path: path, containerID: strings.TrimSpace(string(id)), ifName: strings.TrimSpace(string(ifName))}, nil
}

// releaseLeases does what host-local's DEL does for the container ID
// and interface on the network: under the store's lock, so that no ADD
// of the plugin searches meanwhile, every lease of theirs goes (one per
// address family). addrs are where the ADD's result put them, checked
// first so that a release reads one or two files, not the store; with
// none known (an ADD that failed part way), the store is searched.
func (m *Manager) releaseLeases(networkID, containerID, ifName string, addrs ...netip.Addr) error {
	dir := filepath.Join(m.ipamDir(), networkID)
	unlock, err := lockStore(dir)
	if err != nil || unlock == nil {
		return err
	}
	defer unlock()
	var leases []leaseFile
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		l, err := readLease(filepath.Join(dir, a.String()))
		if err == nil {
			leases = append(leases, l)
		}
	}
	if len(leases) == 0 {
		if leases, err = readLeases(dir); err != nil {
			return fmt.Errorf("address leases of network %s: %w", networkID, err)
		}
	}
	for _, l := range leases {
		if l.containerID == containerID && (l.ifName == ifName || l.ifName == "") {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release address lease: %w", err)
			}
		}
	}
	return nil
}

// lockStore takes host-local's lock of a network's store. unlock is nil
// when the store does not exist (no lease was ever taken).
func lockStore(dir string) (unlock func(), _ error) {
	fd, err := unix.Open(filepath.Join(dir, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock address store %s: %w", dir, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock address store %s: %w", dir, err)
	}
	// Closing the descriptor drops the lock.
	return func() { unix.Close(fd) }, nil
}

// dropCachedResult removes what libcni cached of an ADD when no plugin
// runs the DEL that would have removed it (a pool entry's release):
// the file libcni names results/<network>-<container ID>-<interface>
// under its cache directory.
func (m *Manager) dropCachedResult(networkID, containerID, ifName string) error {
	err := os.Remove(filepath.Join(m.cacheDir(), "results", networkID+"-"+containerID+"-"+ifName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
