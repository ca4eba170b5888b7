package vm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Offsets in the x86 boot protocol's setup header
// (Documentation/arch/x86/boot.rst). The header is in the first sector of
// the bzImage; payload_offset and payload_length exist since protocol 2.08
// and locate the compressed kernel exactly, so nothing has to scan for
// magic numbers the way scripts/extract-vmlinux does.
const (
	setupSectsOff    = 0x1f1
	headerMagicOff   = 0x202 // "HdrS"
	protocolOff      = 0x206
	payloadOffsetOff = 0x248
	payloadLengthOff = 0x24c
)

var elfMagic = []byte("\x7fELF")

// ExtractVmlinux writes the uncompressed kernel (an ELF vmlinux) contained
// in the bzImage at bzImage to dst. qemu's microvm machine boots such an
// ELF directly through its PVH entry point, which skips the decompressor:
// under software emulation that saves seconds per boot.
func ExtractVmlinux(bzImage, dst string) error {
	img, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("read kernel image: %w", err)
	}
	payload, err := bzImagePayload(img)
	if err != nil {
		return fmt.Errorf("parse %s: %w", bzImage, err)
	}
	elf, err := decompress(payload)
	if err != nil {
		return fmt.Errorf("decompress %s: %w", bzImage, err)
	}
	if !bytes.HasPrefix(elf, elfMagic) {
		return fmt.Errorf("decompress %s: payload is not an ELF file", bzImage)
	}
	if err := os.WriteFile(dst, elf, 0o644); err != nil {
		return fmt.Errorf("write vmlinux: %w", err)
	}
	return nil
}

// bzImagePayload returns the compressed kernel inside a bzImage.
func bzImagePayload(img []byte) ([]byte, error) {
	if len(img) < payloadLengthOff+4 {
		return nil, errors.New("too short for a bzImage")
	}
	if string(img[headerMagicOff:headerMagicOff+4]) != "HdrS" {
		return nil, errors.New("no x86 boot protocol header")
	}
	if proto := binary.LittleEndian.Uint16(img[protocolOff:]); proto < 0x0208 {
		return nil, fmt.Errorf("boot protocol %#x predates payload fields", proto)
	}
	setupSects := int(img[setupSectsOff])
	if setupSects == 0 {
		// The boot protocol: a zero means 4.
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(img[payloadOffsetOff:]))
	n := int(binary.LittleEndian.Uint32(img[payloadLengthOff:]))
	if off < 0 || n <= 0 || off+n > len(img) {
		return nil, fmt.Errorf("payload [%d, +%d) outside the %d-byte image", off, n, len(img))
	}
	return img[off : off+n], nil
}

// decompress undoes the kernel's payload compression, chosen by magic.
// Debian's kernels use xz; the standard library has no xz decoder, so xz
// and zstd payloads go through the xz-utils and zstd commands. The kernel's
// build appends the uncompressed size (4 bytes) after the stream: gzip and
// xz are told to stop after the first stream, zstd, which cannot be, gets
// the stream without those bytes.
func decompress(p []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(p, []byte("\xfd7zXZ\x00")):
		return filter(p, "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		if len(p) < 4 {
			return nil, errors.New("zstd: truncated payload")
		}
		return filter(p[:len(p)-4], "zstd", "-dc")
	case bytes.HasPrefix(p, elfMagic):
		return p, nil
	}
	return nil, fmt.Errorf("unknown compression (magic % x)", p[:min(len(p), 6)])
}

// filter pipes in through a decompression command.
func filter(in []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}
