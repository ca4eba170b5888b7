package docker

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// The frames the writer makes are read back by the client's demultiplexer
// into the right streams, whole, in order; a large write is cut into
// frames of at most maxFrame bytes.
func TestMuxStreamRoundTrip(t *testing.T) {
	var wire bytes.Buffer
	flushes := 0
	m := &muxStream{w: &wire, flush: func() error { flushes++; return nil }}
	out, errw := m.stream(stdcopy.Stdout), m.stream(stdcopy.Stderr)
	big := strings.Repeat("x", 3*maxFrame+5)
	for _, w := range []struct {
		s   string
		dst interface{ Write([]byte) (int, error) }
	}{{"hello\n", out}, {"oops\n", errw}, {big, out}, {"", out}} {
		if n, err := w.dst.Write([]byte(w.s)); err != nil || n != len(w.s) {
			t.Fatalf("write %d bytes: %d, %v", len(w.s), n, err)
		}
	}
	if flushes != 4 {
		t.Errorf("flushes = %d, want one per write", flushes)
	}
	// The first frame's header: stream 1, size 6.
	if h := wire.Bytes()[:8]; h[0] != 1 || binary.BigEndian.Uint32(h[4:]) != 6 {
		t.Errorf("first header % x", h)
	}
	frames := 0
	for b := wire.Bytes(); len(b) >= 8; frames++ {
		size := int(binary.BigEndian.Uint32(b[4:8]))
		if size > maxFrame {
			t.Fatalf("frame of %d bytes, cap %d", size, maxFrame)
		}
		b = b[8+size:]
	}
	if frames != 6 {
		t.Errorf("%d frames, want 6", frames)
	}
	var gotOut, gotErr bytes.Buffer
	if _, err := stdcopy.StdCopy(&gotOut, &gotErr, &wire); err != nil {
		t.Fatal(err)
	}
	if gotOut.String() != "hello\n"+big || gotErr.String() != "oops\n" {
		t.Errorf("stdout %d bytes, stderr %q", gotOut.Len(), gotErr.String())
	}
}

// A Systemerr frame reaches the client as the error of its copy.
func TestMuxStreamSystemError(t *testing.T) {
	var wire bytes.Buffer
	m := &muxStream{w: &wire}
	m.stream(stdcopy.Stdout).Write([]byte("partial\n"))
	m.stream(stdcopy.Systemerr).Write([]byte("the log is gone"))
	var out bytes.Buffer
	_, err := stdcopy.StdCopy(&out, &out, &wire)
	if err == nil || !strings.Contains(err.Error(), "the log is gone") || out.String() != "partial\n" {
		t.Errorf("err %v, out %q", err, out.String())
	}
}

// objectRoute maps one path element of containers, exec sessions,
// volumes and networks; longer paths and other prefixes are left alone.
func TestObjectRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/containers/abc/json": "/containers/{name}/json",
		"/containers/abc":      "/containers/{name}",
		"/exec/123/start":      "/exec/{name}/start",
		"/volumes/v1":          "/volumes/{name}",
		"/containers/a/b/c":    "/containers/a/b/c",
		"/networks/n1":         "/networks/{name}",
		"/plugins/p1":          "/plugins/p1",
		"/containers//json":    "/containers//json",
	} {
		if got, _ := objectRoute(path); got != want {
			t.Errorf("objectRoute(%q) = %q, want %q", path, got, want)
		}
	}
}
