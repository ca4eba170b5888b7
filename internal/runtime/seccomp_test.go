package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-project/berth/internal/linux/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func testProfile() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit", "exit_group", "futex"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		},
	}
}

func TestSeccompEntryRoundTrip(t *testing.T) {
	e := &seccomp.Encoded{Flags: unix.SECCOMP_FILTER_FLAG_LOG, Notify: true, Prog: []unix.SockFilter{
		{Code: 0x20, Jt: 0, Jf: 0, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000},
	}}
	key := []byte("boot\x00identity\x00{\"defaultAction\":\"SCMP_ACT_ERRNO\"}")
	data := encodeSeccompEntry(e, key)
	got, err := decodeSeccompEntry(data, key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: got %+v, want %+v", got, e)
	}
	flip := func(i int) []byte {
		b := append([]byte{}, data...)
		b[i] ^= 1
		return b
	}
	bad := map[string][]byte{
		"empty":        nil,
		"truncated":    data[:len(data)-1],
		"flipped key":  flip(len(seccompCacheMagic) + 6),
		"flipped prog": flip(len(data) - 12),
		"bad magic":    append([]byte("x"), data[1:]...),
		"no program":   encodeSeccompEntry(&seccomp.Encoded{}, key),
	}
	for name, b := range bad {
		if _, err := decodeSeccompEntry(b, key); err == nil {
			t.Errorf("%s entry decoded", name)
		}
	}
	// An intact entry of another key (a name collision) is no hit.
	if _, err := decodeSeccompEntry(data, append(key[:len(key):len(key)], ' ')); err == nil {
		t.Error("an entry of another key decoded")
	}
}

func TestCompileSeccompCached(t *testing.T) {
	if _, err := seccomp.Compile(testProfile()); err != nil {
		t.Skipf("no seccomp compiler in this build: %v", err)
	}
	root := filepath.Join(t.TempDir(), "root")
	want, _, err := compileSeccomp(root, testProfile())
	if err != nil {
		t.Fatal(err)
	}
	cache := openSeccompCache(root, testProfile())
	if cached := cache.get(); !reflect.DeepEqual(cached, want) {
		t.Fatalf("after a compile the cache holds %+v, want the compiled program", cached)
	}
	// What the cache holds is what create gets: a marker program put
	// under the profile's key comes back instead of a compile.
	marker := &seccomp.Encoded{Prog: []unix.SockFilter{{Code: 0x6, K: 0x7fff0000}}}
	cache.put(marker)
	if got, _, err := compileSeccomp(root, testProfile()); err != nil || !reflect.DeepEqual(got, marker) {
		t.Fatalf("cached lookup: got %+v, %v; want the marker", got, err)
	}
	// Another profile is another key.
	other := testProfile()
	other.DefaultAction = specs.ActKillProcess
	if got, _, err := compileSeccomp(root, other); err != nil || reflect.DeepEqual(got, marker) || reflect.DeepEqual(got, want) {
		t.Fatalf("other profile: got %+v, %v", got, err)
	}
	// A damaged entry is compiled again and replaced.
	data, err := os.ReadFile(filepath.Join(cache.dir, cache.name))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(filepath.Join(cache.dir, cache.name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := compileSeccomp(root, testProfile()); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("damaged entry: got %+v, %v; want a fresh compile", got, err)
	}
	if cached := cache.get(); !reflect.DeepEqual(cached, want) {
		t.Fatalf("damaged entry not replaced: %+v", cached)
	}
	// A directory others may write to is not trusted.
	cache.put(marker)
	if err := os.Chmod(cache.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if got, _, err := compileSeccomp(root, testProfile()); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("world-writable cache: got %+v, %v; want a fresh compile", got, err)
	}
	// Nor is a symlink in its place.
	os.RemoveAll(cache.dir)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, cache.dir); err != nil {
		t.Fatal(err)
	}
	if got, _, err := compileSeccomp(root, testProfile()); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("symlinked cache: got %+v, %v", got, err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("the cache wrote through a symlink: %v", entries)
	}
}

func TestSeccompCacheBounded(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := &seccomp.Encoded{Prog: []unix.SockFilter{{Code: 0x6, K: 0x7fff0000}}}
	p := testProfile()
	for i := 0; i < seccompCacheMax+5; i++ {
		p.ListenerMetadata = string(rune('a'+i%26)) + string(rune('a'+i/26))
		openSeccompCache(root, p).put(marker)
	}
	entries, err := os.ReadDir(root + seccompCacheSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || len(entries) > seccompCacheMax {
		t.Fatalf("%d entries, want 1..%d", len(entries), seccompCacheMax)
	}
	// The cache is not in the root, where tools take every entry for a
	// container.
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("the root holds %v", entries)
	}
}
