package vm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage returns a bzImage-shaped file: a setup header of protocol
// 2.15 with setupSects sectors, then payload at payload_offset, then the
// 4-byte size the kernel build appends.
func fakeBzImage(t *testing.T, setupSects byte, payload []byte) []byte {
	t.Helper()
	const payloadOffset = 100
	img := make([]byte, (int(setupSects)+1)*512+payloadOffset)
	img[setupSectsOff] = setupSects
	copy(img[headerMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(img[protocolOff:], 0x020f)
	binary.LittleEndian.PutUint32(img[payloadOffsetOff:], payloadOffset)
	binary.LittleEndian.PutUint32(img[payloadLengthOff:], uint32(len(payload)))
	img = append(img, payload...)
	return append(img, 1, 2, 3, 4)
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestExtractVmlinuxGzip(t *testing.T) {
	elf := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel"), 1000)...)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(src, fakeBzImage(t, 30, gzipped(t, elf)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ExtractVmlinux(src, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, elf) {
		t.Errorf("vmlinux: got %d bytes, want the %d-byte ELF", len(got), len(elf))
	}
}

func TestBzImagePayloadZeroSetupSects(t *testing.T) {
	// setup_sects 0 means 4: the payload starts after 5 sectors.
	img := fakeBzImage(t, 4, []byte("payload"))
	img[setupSectsOff] = 0
	p, err := bzImagePayload(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(p) != "payload" {
		t.Errorf("payload = %q", p)
	}
}

func TestBzImagePayloadErrors(t *testing.T) {
	good := fakeBzImage(t, 2, []byte("payload"))
	for name, edit := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:100] },
		"no magic":     func(b []byte) []byte { copy(b[headerMagicOff:], "XXXX"); return b },
		"old protocol": func(b []byte) []byte { binary.LittleEndian.PutUint16(b[protocolOff:], 0x0206); return b },
		"past the end": func(b []byte) []byte { binary.LittleEndian.PutUint32(b[payloadLengthOff:], 1<<30); return b },
	} {
		if _, err := bzImagePayload(edit(bytes.Clone(good))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDecompressRefusesNonELF(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(src, fakeBzImage(t, 2, gzipped(t, []byte("not a kernel"))), 0o644); err != nil {
		t.Fatal(err)
	}
	err := ExtractVmlinux(src, filepath.Join(dir, "vmlinux"))
	if err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("err = %v, want a not-an-ELF error", err)
	}
	if _, err := decompress([]byte("????????")); err == nil {
		t.Error("unknown compression: no error")
	}
}
