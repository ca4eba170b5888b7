package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(vs []*volume.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestCreateInspectReopen(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, volume.CreateRequest{Name: "data", Labels: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Labels["a"] != "1" || v.CreatedAt == "" {
		t.Errorf("created %+v", v)
	}
	if v.Mountpoint != filepath.Join(s.Root(), "data", "_data") {
		t.Errorf("mountpoint %s", v.Mountpoint)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint not a directory: %v", err)
	}
	// Creating it again is no error and keeps the first labels.
	again, err := s.Create(ctx, volume.CreateRequest{Name: "data", Labels: map[string]string{"b": "2"}})
	if err != nil || again.Labels["a"] != "1" || again.CreatedAt != v.CreatedAt {
		t.Errorf("second create: %+v, %v", again, err)
	}
	anon, err := s.Create(ctx, volume.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(anon.Name) != 64 || strings.Trim(anon.Name, "0123456789abcdef") != "" || !s.Anonymous(anon.Name) {
		t.Errorf("anonymous volume %+v", anon)
	}
	s2, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(ctx, "data")
	if err != nil || got.CreatedAt != v.CreatedAt || got.Labels["a"] != "1" {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
	if !s2.Anonymous(anon.Name) {
		t.Error("anonymous label lost on reopen")
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, req := range []volume.CreateRequest{
		{Name: "x"},
		{Name: "../etc"},
		{Name: "/abs"},
		{Name: "a b"},
		{Name: "ok", DriverOpts: map[string]string{"colour": "blue"}},
		{Name: "ok", DriverOpts: map[string]string{"type": "tmpfs"}},
	} {
		if _, err := s.Create(ctx, req); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Create(%+v) = %v, want ErrInvalid", req, err)
		}
	}
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "ok", Driver: "nfs-plugin"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown driver: %v", err)
	}
	if des, _ := os.ReadDir(s.Root()); len(des) != 0 {
		t.Errorf("refused creates left %d entries", len(des))
	}
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, req := range []volume.CreateRequest{
		{Name: "web-data", Labels: map[string]string{"app": "web", "tier": "front"}},
		{Name: "db-data", Labels: map[string]string{"app": "db"}},
		{Name: "scratch"},
	} {
		if _, err := s.Create(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Acquire("db-data", "c1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    map[string][]string
		want []string
	}{
		{nil, []string{"db-data", "scratch", "web-data"}},
		{map[string][]string{"name": {"data"}}, []string{"db-data", "web-data"}},
		{map[string][]string{"name": {"^web"}}, []string{"web-data"}},
		{map[string][]string{"label": {"app"}}, []string{"db-data", "web-data"}},
		{map[string][]string{"label": {"app=web", "tier"}}, []string{"web-data"}},
		{map[string][]string{"label": {"app=web", "tier=back"}}, nil},
		{map[string][]string{"dangling": {"true"}}, []string{"scratch", "web-data"}},
		{map[string][]string{"dangling": {"0"}}, []string{"db-data"}},
		{map[string][]string{"driver": {"local"}}, []string{"db-data", "scratch", "web-data"}},
	} {
		vs, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatalf("List(%v): %v", c.f, err)
		}
		if got := names(vs); !slices.Equal(got, c.want) {
			t.Errorf("List(%v) = %v, want %v", c.f, got, c.want)
		}
	}
	if _, err := s.List(ctx, map[string][]string{"colour": {"x"}}); !errors.Is(err, errdefs.ErrInvalid) || err.Error() != "invalid filter 'colour'" {
		t.Errorf("bad filter: %v", err)
	}
	if _, err := s.List(ctx, map[string][]string{"dangling": {"maybe"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad dangling value: %v", err)
	}
}

func TestRemoveInUseAndPrune(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "named"}); err != nil {
		t.Fatal(err)
	}
	anon, err := s.Create(ctx, volume.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	used, err := s.Create(ctx, volume.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(anon.Mountpoint, "f"), []byte("12345"), 0o644)
	s.Acquire("named", "c2")
	s.Acquire("named", "c1")
	s.Acquire(used.Name, "c3")

	err = s.Remove(ctx, "named", true)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "remove named: volume is in use - [c1 c2]" {
		t.Errorf("remove in use: %v", err)
	}
	if err := s.Remove(ctx, "missing", false); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "get missing: no such volume" {
		t.Errorf("remove missing: %v", err)
	}
	if err := s.Remove(ctx, "missing", true); err != nil {
		t.Errorf("remove -f missing: %v", err)
	}

	// Default prune: unused anonymous volumes only.
	rep, err := s.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.VolumesDeleted, []string{anon.Name}) || rep.SpaceReclaimed != 5 {
		t.Errorf("prune: %+v", rep)
	}
	if _, err := os.Stat(anon.Mountpoint); !os.IsNotExist(err) {
		t.Errorf("pruned volume still on disk: %v", err)
	}
	s.Release("named", "c1")
	s.Release("named", "c2")
	rep, err = s.Prune(ctx, map[string][]string{"all": {"true"}})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{"named"}) {
		t.Errorf("prune all: %+v, %v", rep, err)
	}
	if !s.Exists(used.Name) {
		t.Error("prune removed a volume in use")
	}
	s.Release(used.Name, "c3")
	if err := s.Remove(ctx, used.Name, false); err != nil {
		t.Fatal(err)
	}
	if des, _ := os.ReadDir(s.Root()); len(des) != 0 {
		t.Errorf("%d entries left after removing every volume", len(des))
	}
}

// A tmpfs volume (docker's --opt type=tmpfs) is mounted by its first user
// and unmounted by its last, and removal never reaches through a mount.
func TestDriverOptionMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts")
	}
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, volume.CreateRequest{Name: "tmp", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700"}})
	if err != nil {
		t.Fatal(err)
	}
	isTmpfs := func() bool {
		var st unix.Statfs_t
		return unix.Statfs(v.Mountpoint, &st) == nil && st.Type == unix.TMPFS_MAGIC
	}
	for range 2 {
		if _, err := s.Mount("tmp"); err != nil {
			t.Fatal(err)
		}
	}
	if !isTmpfs() {
		t.Fatal("not mounted after Mount")
	}
	s.Unmount("tmp")
	if !isTmpfs() {
		t.Fatal("unmounted while a user remains")
	}
	s.Unmount("tmp")
	if isTmpfs() {
		t.Fatal("still mounted after the last Unmount")
	}

	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "keep"), []byte("x"), 0o644)
	if _, err := s.Create(ctx, volume.CreateRequest{Name: "bound", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount("bound")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "keep")); err != nil {
		t.Fatalf("bind volume does not show the host directory: %v", err)
	}
	// Removal with the bind still mounted (as after a crash) must unmount
	// rather than delete the host's files.
	if err := s.Remove(ctx, "bound", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "keep")); err != nil {
		t.Fatalf("removing a bind volume deleted the host's file: %v", err)
	}
}
