package vm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseDepends(t *testing.T) {
	info := []byte("license=GPL\x00depends=jbd2,mbcache,crc16\x00intree=Y\x00")
	if got := parseDepends(info); !slices.Equal(got, []string{"jbd2", "mbcache", "crc16"}) {
		t.Errorf("parseDepends = %q", got)
	}
	if got := parseDepends([]byte("depends=\x00")); len(got) != 0 {
		t.Errorf("empty depends = %q", got)
	}
	if got := parseDepends([]byte("depends=virtio-ring\x00")); !slices.Equal(got, []string{"virtio_ring"}) {
		t.Errorf("dash in depends = %q", got)
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"/lib/modules/x/kernel/fs/ext4/ext4.ko":      "ext4",
		"kernel/crypto/crc32c_generic.ko":            "crc32c_generic",
		"kernel/drivers/char/virtio-console-test.ko": "virtio_console_test",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	deps := map[string][]string{
		"ext4":        {"jbd2", "mbcache", "crc16"},
		"jbd2":        nil,
		"mbcache":     nil,
		"crc16":       nil,
		"virtio_blk":  {"virtio", "virtio_ring"},
		"virtio_mmio": {"virtio", "virtio_ring"},
		"virtio":      nil,
		"virtio_ring": nil,
	}
	lookup := func(n string) ([]string, error) {
		d, ok := deps[n]
		if !ok {
			return nil, errors.New("no module " + n)
		}
		return d, nil
	}
	got, err := loadOrder([]string{"virtio_mmio", "virtio_blk", "ext4"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_mmio", "virtio_blk", "jbd2", "mbcache", "crc16", "ext4"}
	if !slices.Equal(got, want) {
		t.Errorf("loadOrder = %q, want %q", got, want)
	}
	if _, err := loadOrder([]string{"missing"}, lookup); err == nil {
		t.Error("missing module: no error")
	}
	deps["jbd2"] = []string{"ext4"}
	_, err = loadOrder([]string{"ext4"}, lookup)
	if err == nil || !strings.Contains(err.Error(), "cycle: ext4 -> jbd2 -> ext4") {
		t.Errorf("cycle: err = %v", err)
	}
}
