package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// compileSeccomp compiles the spec's seccomp profile once, in the runtime,
// so that a bad profile fails before anything exists, and connects to the
// notify listener from the runtime's own mount namespace and credentials
// (the process that loads the filter may see neither the path nor be
// allowed to connect). The caller closes conn.
//
// Compiled programs are cached under root (see seccompCache): generating
// the program for Docker's default profile is most of the CPU time of a
// create, and every container of an engine asks for one of a handful of
// profiles.
func compileSeccomp(root string, s *specs.LinuxSeccomp) (enc *seccomp.Encoded, conn *os.File, err error) {
	if s == nil {
		return nil, nil, nil
	}
	cache := openSeccompCache(root, s)
	if enc = cache.get(); enc == nil {
		f, err := seccomp.Compile(s)
		if err != nil {
			return nil, nil, invalid("linux.seccomp: %v", err)
		}
		enc = f.Encode()
		cache.put(enc)
	}
	if enc.Notify {
		if s.ListenerPath == "" {
			return nil, nil, invalid("linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath")
		}
		conn, err = seccomp.DialListener(s.ListenerPath)
		if err != nil {
			return nil, nil, fmt.Errorf("seccomp listener %s: %w", s.ListenerPath, err)
		}
	}
	return enc, conn, nil
}

// seccompCacheSuffix names the cache's directory, beside the runtime's
// root rather than in it: tools that drive the runtime take every entry of
// the root for a container (berth's own tests delete each with --force).
const seccompCacheSuffix = ".seccomp-cache"

// seccompCacheMax bounds the entries: past it the cache starts over. An
// engine uses a handful of profiles (Docker's default varies with the
// capabilities a container gets); a caller that sends a new profile with
// every container must not fill the disk.
const seccompCacheMax = 64

// seccompCacheMagic opens every entry and names its format.
const seccompCacheMagic = "berth-seccomp-v2\n"

// seccompCache is one profile's entry in the cache of compiled programs.
//
// A program is what libseccomp generates for the profile on this kernel
// (the filter flags a profile may name are checked against the kernel) by
// this build of the compiler; so an entry is valid for the profile's JSON
// together with the boot's id and the identity of the running binary
// (device, inode, size, modification time), its key: a new boot, or a new
// runtime binary, compiles afresh. Entries are named by a hash of the key
// and hold the key itself, which must match byte for byte: two keys with
// one name (FNV is no cryptographic hash, and the runtime links no crypto,
// whose package initialisation every container's init would pay for) only
// make a miss.
//
// The directory ROOT.seccomp-cache is trusted as the root is (whoever can
// write there can already direct kill and delete at any process), and only
// while it is a real directory of this user's that nobody else may write:
// it is opened without following symlinks and checked through its
// descriptor, and entries are opened relative to that descriptor, so that
// a directory swapped in after the check is never read. Entries are
// written through a temporary file and a rename, and end with a checksum
// of their content, so that a torn or damaged file is compiled again,
// never loaded.
type seccompCache struct {
	dir, name string
	key       []byte
}

// openSeccompCache names the entry of profile s; a zero cache (no root,
// no identity) neither finds nor keeps anything.
func openSeccompCache(root string, s *specs.LinuxSeccomp) seccompCache {
	if root == "" {
		return seccompCache{}
	}
	profile, err := json.Marshal(s)
	if err != nil {
		return seccompCache{}
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return seccompCache{}
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return seccompCache{}
	}
	key := fmt.Appendf(nil, "%s\x00%d:%d:%d:%d.%d\x00", bytes.TrimSpace(boot),
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	key = append(key, profile...)
	h := fnv.New128a()
	h.Write(key)
	return seccompCache{dir: filepath.Clean(root) + seccompCacheSuffix, name: hex.EncodeToString(h.Sum(nil)), key: key}
}

// get returns the cached program, or nil when there is none to trust.
func (c seccompCache) get() *seccomp.Encoded {
	if c.name == "" {
		return nil
	}
	dfd, err := c.openDir()
	if err != nil {
		return nil
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, c.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), c.name)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, seccompEntryMax))
	if err != nil {
		return nil
	}
	enc, err := decodeSeccompEntry(data, c.key)
	if err != nil {
		// Damaged, or another key's: the next put replaces it.
		return nil
	}
	return enc
}

// seccompEntryMax bounds an entry: a key of up to 16 MiB (a spec's
// limit) and a full program of 65535 instructions.
const seccompEntryMax = 64 + 16<<20 + 8*0xffff

// put keeps enc for the next create; failures only cost a compile later.
func (c seccompCache) put(enc *seccomp.Encoded) {
	if c.name == "" {
		return
	}
	if err := unix.Mkdir(c.dir, 0o700); err != nil && err != unix.EEXIST {
		return
	}
	dfd, err := c.openDir()
	if err != nil {
		return
	}
	defer unix.Close(dfd)
	if ddup, err := unix.Dup(dfd); err == nil {
		d := os.NewFile(uintptr(ddup), c.dir)
		if names, err := d.Readdirnames(-1); err == nil && len(names) >= seccompCacheMax {
			for _, n := range names {
				unix.Unlinkat(dfd, n, 0)
			}
		}
		d.Close()
	}
	// No fsync: a torn entry fails its checksum and is compiled again.
	tmp := fmt.Sprintf(".tmp-%d-%s", os.Getpid(), c.name[:16])
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(encodeSeccompEntry(enc, c.key))
	if cerr := f.Close(); werr != nil || cerr != nil || unix.Renameat(dfd, tmp, dfd, c.name) != nil {
		unix.Unlinkat(dfd, tmp, 0)
	}
}

// openDir opens the cache directory if it is a real directory of this
// user's that no one else may write to.
func (c seccompCache) openDir() (int, error) {
	fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: owned by uid %d with mode %#o", c.dir, st.Uid, st.Mode&0o7777)
	}
	return fd, nil
}

// An entry is the magic line, then little-endian: the key's length (4
// bytes) and the key, flags (8), notify (1), the instruction count (4),
// the instructions (8 bytes each: code 2, jt 1, jf 1, k 4), and last the
// 64-bit FNV-1a of everything before it.
func encodeSeccompEntry(e *seccomp.Encoded, key []byte) []byte {
	b := make([]byte, 0, len(seccompCacheMagic)+4+len(key)+13+8*len(e.Prog)+8)
	b = append(b, seccompCacheMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Flags))
	notify := byte(0)
	if e.Notify {
		notify = 1
	}
	b = append(b, notify)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Prog)))
	for _, in := range e.Prog {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return binary.LittleEndian.AppendUint64(b, checksum(b))
}

func checksum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// decodeSeccompEntry returns the program of an entry written for key.
func decodeSeccompEntry(b, key []byte) (*seccomp.Encoded, error) {
	if len(b) < len(seccompCacheMagic)+4+13+8 || !bytes.HasPrefix(b, []byte(seccompCacheMagic)) {
		return nil, errors.New("seccomp cache entry: not an entry")
	}
	body := b[:len(b)-8]
	if binary.LittleEndian.Uint64(b[len(body):]) != checksum(body) {
		return nil, errors.New("seccomp cache entry: checksum mismatch")
	}
	p := body[len(seccompCacheMagic):]
	n := binary.LittleEndian.Uint32(p)
	p = p[4:]
	if uint64(len(p)) < uint64(n)+13 || !bytes.Equal(p[:n], key) {
		return nil, errors.New("seccomp cache entry: written for another profile, boot or binary")
	}
	p = p[n:]
	e := &seccomp.Encoded{Flags: uintptr(binary.LittleEndian.Uint64(p)), Notify: p[8] == 1}
	count := binary.LittleEndian.Uint32(p[9:])
	p = p[13:]
	if count == 0 || count > 0xffff || uint64(len(p)) != 8*uint64(count) {
		return nil, fmt.Errorf("seccomp cache entry: %d instructions in %d bytes", count, len(p))
	}
	e.Prog = make([]unix.SockFilter, count)
	for i := range e.Prog {
		in := p[8*i:]
		e.Prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
	}
	return e, nil
}
