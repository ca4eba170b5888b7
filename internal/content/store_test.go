package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// unreadable fails the test if anything reads it.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("Put read the source of a blob it already has")
	return 0, errors.New("read")
}

func TestPutAndReadBlob(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(20, 5000)
	ctx := context.Background()
	if err := s.Put(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadBlob(desc, 5000)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob: %d bytes, %v", len(got), err)
	}
	if _, err := s.ReadBlob(desc, 4999); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadBlob over the cap: %v, want ErrTooLarge", err)
	}
	// Present: not read again.
	if err := s.Put(ctx, desc, unreadable{t}); err != nil {
		t.Fatal(err)
	}
	// A descriptor that lies about the size of a committed blob.
	short := desc
	short.Size--
	if _, err := s.ReadBlob(short, 1<<20); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("ReadBlob with a short size: %v, want ErrSizeMismatch", err)
	}
	// A blob changed on disk after its commit is caught.
	evil := bytes.Clone(data)
	evil[0] ^= 0xff
	if err := os.WriteFile(s.blobPath(desc.Digest), evil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(desc, 1<<20); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("ReadBlob of a tampered blob: %v, want ErrDigestMismatch", err)
	}
	missing := desc
	missing.Digest = digest.FromString("nope")
	if _, err := s.ReadBlob(missing, 1<<20); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadBlob of a missing blob: %v, want ErrNotFound", err)
	}
}

func TestPutRefusesBadData(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	data, desc := testBlob(21, 5000)
	if err := s.Put(ctx, desc, bytes.NewReader(append(bytes.Clone(data), 'x'))); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("Put of a longer reader: %v, want ErrSizeMismatch", err)
	}
	if err := s.Put(ctx, desc, bytes.NewReader(data[:4000])); err == nil {
		t.Error("Put of a shorter reader succeeded")
	}
	other, _ := testBlob(22, 5000)
	if err := s.Put(ctx, desc, bytes.NewReader(other)); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Put of other bytes: %v, want ErrDigestMismatch", err)
	}
	// The short Put left a partial; a Put with the right bytes must not
	// trust it (it may come from anywhere) and still succeed.
	if err := s.Put(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if parts, _ := s.Partials(); len(parts) != 0 {
		t.Errorf("partials %+v remain", parts)
	}
}

func TestWalkDeleteUsage(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	want := map[digest.Digest]int64{}
	var total int64
	for i := range 5 {
		data, desc := testBlob(uint64(30+i), 1000*(i+1))
		if err := s.Put(ctx, desc, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want[desc.Digest] = desc.Size
		total += desc.Size
	}
	// A partial counts in Usage but is not a blob.
	data, desc := testBlob(40, 10_000)
	src := &source{data: data, plan: []func(int64) io.ReadCloser{failingAfter(data, 1234)}}
	ingestAll(t, s, desc, src.open)
	total += 1234
	// Stray files are ignored by Walk.
	os.WriteFile(s.blobs+"/not-a-digest", []byte("x"), 0o644)

	got := map[digest.Digest]int64{}
	var last digest.Digest
	if err := s.Walk(func(i Info) error {
		if i.Digest <= last {
			t.Errorf("Walk out of order: %s after %s", i.Digest, last)
		}
		last = i.Digest
		got[i.Digest] = i.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk found %d blobs, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != n {
			t.Errorf("Walk: %s is %d bytes, want %d", d, got[d], n)
		}
	}
	if u, err := s.Usage(); err != nil || u != total {
		t.Errorf("Usage = %d, %v; want %d (blobs and the partial, not the stray file)", u, err, total)
	}
	stop := errors.New("stop")
	if err := s.Walk(func(Info) error { return stop }); err != stop {
		t.Errorf("Walk returned %v, want fn's error", err)
	}
	for d := range want {
		if err := s.Delete(d); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		if _, err := s.Open(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open after Delete: %v, want ErrNotFound", err)
		}
	}
}

func TestCleanPartials(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	data, desc := testBlob(50, 10_000)
	src := &source{data: data, plan: []func(int64) io.ReadCloser{failingAfter(data, 5000)}}
	ingestAll(t, s, desc, src.open)

	// A partial in use by an ingest is never removed.
	data2, desc2 := testBlob(51, 10_000)
	busy, err := s.Ingest(ctx, desc2, (&source{data: data2}).open)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	busy.Read(buf)
	busy.(*ingestReader).w.Flush()

	if n, err := s.CleanPartials(time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("CleanPartials of recent partials removed %d, %v", n, err)
	}
	n, err := s.CleanPartials(time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("CleanPartials removed %d, %v; want the idle one", n, err)
	}
	parts, _ := s.Partials()
	if len(parts) != 1 || parts[0].Digest != desc2.Digest {
		t.Fatalf("partials %+v, want only the busy one", parts)
	}
	busy.Close()
	if n, err := s.CleanPartials(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("CleanPartials after Close removed %d, %v", n, err)
	}
	assertEmpty(t, s)
}

func TestOpenRefusesAFileAsRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(root+"/blobs", 0o700)
	os.WriteFile(root+"/blobs/sha256", nil, 0o600)
	if _, err := Open(root); err == nil {
		t.Fatal("Open accepted a store whose blobs/sha256 is a file")
	}
}
