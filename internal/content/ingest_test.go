package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestIngestCommits(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(1, 3<<20+17)
	src := &source{data: data}
	got, err := ingestAll(t, s, desc, src.open)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("ingest yielded %d bytes that differ from the blob's %d", len(got), len(data))
	}
	info, err := s.Info(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != desc.Size || info.Digest != desc.Digest {
		t.Errorf("Info = %+v, want size %d", info, desc.Size)
	}
	fi, err := os.Stat(s.blobPath(desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("blob mode %v, want 0644", fi.Mode().Perm())
	}
	if names := dirNames(t, s.ingest); len(names) != 0 {
		t.Errorf("ingest holds %v after the commit", names)
	}

	// A committed blob is opened, not fetched again.
	again, err := ingestAll(t, s, desc, src.open)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("second ingest: %d bytes, %v", len(again), err)
	}
	if calls := src.calls(); len(calls) != 1 || calls[0] != 0 {
		t.Errorf("open was called at offsets %v, want [0]", calls)
	}
	// A descriptor that disagrees with the committed blob is an error.
	wrong := desc
	wrong.Size++
	if _, err := ingestAll(t, s, wrong, src.open); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("ingest with a wrong size: %v, want ErrSizeMismatch", err)
	}
}

func TestIngestEmptyBlob(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(2, 0)
	src := &source{data: data}
	got, err := ingestAll(t, s, desc, src.open)
	if err != nil || len(got) != 0 {
		t.Fatalf("ingest of an empty blob: %q, %v", got, err)
	}
	if _, err := s.Info(desc.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentIngestFetchesOnce(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(3, 1<<20)
	// The one fetch is held back until every goroutine has had time to
	// call Ingest; whoever arrives later still must not fetch.
	src := &source{data: data, gate: make(chan struct{})}
	const n = 8
	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = ingestAll(t, s, desc, src.open) })
	}
	time.Sleep(50 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(results[i], data) {
			t.Errorf("goroutine %d: %d bytes, %v", i, len(results[i]), errs[i])
		}
	}
	if calls := src.calls(); len(calls) != 1 {
		t.Errorf("open was called %d times (offsets %v), want once", len(calls), calls)
	}
}

func TestConcurrentIngestTakesOverAFailedFetch(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(4, 1<<20)
	const cut = 300_000
	src := &source{data: data, gate: make(chan struct{}), plan: []func(int64) io.ReadCloser{failingAfter(data, cut)}}
	const n = 4
	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = ingestAll(t, s, desc, src.open) })
	}
	time.Sleep(50 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	failed := 0
	for i := range n {
		if errs[i] != nil {
			failed++
			if !strings.Contains(errs[i].Error(), "connection reset") {
				t.Errorf("goroutine %d: %v, want the source's error", i, errs[i])
			}
			continue
		}
		if !bytes.Equal(results[i], data) {
			t.Errorf("goroutine %d: %d bytes differ from the blob", i, len(results[i]))
		}
	}
	if failed != 1 {
		t.Errorf("%d ingests failed, want only the one whose fetch broke", failed)
	}
	if calls := src.calls(); len(calls) != 2 || calls[0] != 0 || calls[1] != cut {
		t.Errorf("open was called at offsets %v, want [0 %d]", calls, cut)
	}
}

func TestIngestResumesAfterANetworkError(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(5, 2<<20)
	const cut = 700_001
	src := &source{data: data, plan: []func(int64) io.ReadCloser{failingAfter(data, cut)}}
	got, err := ingestAll(t, s, desc, src.open)
	if err == nil || errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("first ingest: %v, want the network error", err)
	}
	if !bytes.Equal(got, data[:cut]) {
		t.Fatalf("first ingest yielded %d bytes, want the %d sent", len(got), cut)
	}
	parts, err := s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Digest != desc.Digest || parts[0].Size != cut {
		t.Fatalf("partials %+v, want %s with %d bytes", parts, desc.Digest, cut)
	}
	if _, err := s.Info(desc.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Info of an unfinished blob: %v, want ErrNotFound", err)
	}

	got, err = ingestAll(t, s, desc, src.open)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed ingest: %d bytes, %v", len(got), err)
	}
	if calls := src.calls(); len(calls) != 2 || calls[1] != cut {
		t.Errorf("open was called at offsets %v, want the second at %d", calls, cut)
	}
	if parts, _ := s.Partials(); len(parts) != 0 {
		t.Errorf("partials %+v remain after the commit", parts)
	}
}

func TestIngestCloseEarlyKeepsThePartial(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(6, 1<<20)
	src := &source{data: data}
	rc, err := s.Ingest(context.Background(), desc, src.open)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 400_000)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := rc.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	parts, _ := s.Partials()
	if len(parts) != 1 || parts[0].Size != 400_000 {
		t.Fatalf("partials %+v, want one of 400000 bytes", parts)
	}
	got, err := ingestAll(t, s, desc, src.open)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed ingest: %d bytes, %v", len(got), err)
	}
	if calls := src.calls(); len(calls) != 2 || calls[1] != 400_000 {
		t.Errorf("open was called at offsets %v, want the second at 400000", calls)
	}
}

func TestIngestWrongBytes(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(7, 100_000)
	evil := bytes.Clone(data)
	evil[50_000] ^= 1
	src := &source{data: evil}
	_, err := ingestAll(t, s, desc, src.open)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ingest of altered bytes: %v, want ErrDigestMismatch", err)
	}
	actual := string(desc.Digest.Algorithm()) + ":" // both digests are named
	if !strings.Contains(err.Error(), desc.Digest.String()) || strings.Count(err.Error(), actual) != 2 {
		t.Errorf("error %q does not name the expected and the actual digest", err)
	}
	assertEmpty(t, s)
	// Nothing of the bad download is resumed: the next ingest starts at 0.
	good := &source{data: data}
	if got, err := ingestAll(t, s, desc, good.open); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ingest after the mismatch: %v", err)
	}
	if calls := good.calls(); len(calls) != 1 || calls[0] != 0 {
		t.Errorf("open was called at offsets %v, want [0]", calls)
	}
}

// endless yields zero bytes forever: a server that never stops sending.
type endless struct{ sent *int64 }

func (e endless) Read(p []byte) (int, error) {
	clear(p)
	*e.sent += int64(len(p))
	return len(p), nil
}

func TestIngestTooManyBytes(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(8, 64<<10)
	var extra int64
	src := &source{data: data, plan: []func(int64) io.ReadCloser{func(int64) io.ReadCloser {
		return io.NopCloser(io.MultiReader(bytes.NewReader(data), endless{&extra}))
	}}}
	_, err := ingestAll(t, s, desc, src.open)
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("ingest of an endless body: %v, want ErrSizeMismatch", err)
	}
	if extra > 1<<20 {
		t.Errorf("the store read %d bytes past the declared size before refusing", extra)
	}
	assertEmpty(t, s)
}

func TestIngestTruncatedBody(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(9, 200_000)
	src := &source{data: data, plan: []func(int64) io.ReadCloser{func(int64) io.ReadCloser {
		return io.NopCloser(bytes.NewReader(data[:150_000]))
	}}}
	_, err := ingestAll(t, s, desc, src.open)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "150000 of 200000") {
		t.Fatalf("ingest of a truncated body: %v, want io.ErrUnexpectedEOF with the byte counts", err)
	}
	if _, err := s.Info(desc.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a truncated blob was committed: %v", err)
	}
	// The bytes that came are kept and the rest fetched on the next try.
	if got, err := ingestAll(t, s, desc, src.open); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resume: %v", err)
	}
	if calls := src.calls(); len(calls) != 2 || calls[1] != 150_000 {
		t.Errorf("open was called at offsets %v, want the second at 150000", calls)
	}
}

func TestIngestOpenError(t *testing.T) {
	s := openStore(t)
	_, desc := testBlob(10, 1000)
	open := func(context.Context, int64) (io.ReadCloser, error) { return nil, errors.New("registry unavailable") }
	_, err := ingestAll(t, s, desc, open)
	if err == nil || !strings.Contains(err.Error(), "registry unavailable") || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("ingest with a failing open: %v", err)
	}
	assertEmpty(t, s)
}

func TestIngestCanceled(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(11, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := s.Ingest(ctx, desc, (&source{data: data}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	// A waiter whose context ends gives up too.
	holder, err := s.Ingest(context.Background(), desc, (&source{data: data}).open)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Ingest(short, desc, (&source{data: data}).open); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second ingest while the first holds the download: %v, want a deadline", err)
	}
}

func TestIngestRefusesOtherAlgorithms(t *testing.T) {
	s := openStore(t)
	for _, d := range []string{
		"sha512:" + strings.Repeat("a", 128),
		"sha256:" + strings.Repeat("A", 64),
		"sha256:" + strings.Repeat("a", 63),
		"sha256:../../../../etc/passwd" + strings.Repeat("a", 36),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"",
	} {
		desc := ocispec.Descriptor{Digest: digestOf(d), Size: 1}
		_, err := s.Ingest(context.Background(), desc, (&source{}).open)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ingest of %q: %v, want ErrInvalid", d, err)
		}
	}
	_, desc := testBlob(12, 10)
	desc.Size = -1
	if _, err := s.Ingest(context.Background(), desc, (&source{}).open); !errors.Is(err, ErrInvalid) {
		t.Errorf("ingest with a negative size: %v, want ErrInvalid", err)
	}
}
