package content

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	crashRootEnv = "BERTH_CONTENT_CRASH_ROOT"
	crashSeed    = 60
	crashSize    = 3 << 20
	crashRead    = 1<<20 + 12345
)

// TestCrashHelper is the writer TestIngestResumesAfterACrash kills: it runs
// only in the child process that test starts.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(crashRootEnv)
	if root == "" {
		t.Skip("helper process of TestIngestResumesAfterACrash")
	}
	s, err := Open(root)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	data, desc := testBlob(crashSeed, crashSize)
	rc, err := s.Ingest(context.Background(), desc, (&source{data: data}).open)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if _, err := io.ReadFull(rc, make([]byte, crashRead)); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // until SIGKILL
}

func TestIngestResumesAfterACrash(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashRootEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data, desc := testBlob(crashSeed, crashSize)
	// While the helper lives, its flock keeps this process from writing the
	// same partial.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Ingest(ctx, desc, (&source{data: data}).open); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ingest while another process holds the download: %v, want to wait until the deadline", err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	killed = true

	parts, err := s.Partials()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Size == 0 || parts[0].Size > crashRead {
		t.Fatalf("partials after the kill: %+v, want one of 1..%d bytes", parts, crashRead)
	}
	kept := parts[0].Size
	src := &source{data: data}
	got, err := ingestAll(t, s, desc, src.open)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ingest after the crash: %d bytes, %v", len(got), err)
	}
	if calls := src.calls(); len(calls) != 1 || calls[0] != kept {
		t.Errorf("open was called at offsets %v, want [%d] (the bytes the killed writer left)", calls, kept)
	}
	assertNoPartials(t, s)
}

func assertNoPartials(t *testing.T, s *Store) {
	t.Helper()
	if names := dirNames(t, s.ingest); len(names) != 0 {
		t.Errorf("ingest holds %v", names)
	}
}

// TestIngestOverHTTP resumes a download from a real HTTP server after the
// connection broke, with the Range request a registry client sends.
func TestIngestOverHTTP(t *testing.T) {
	data, desc := testBlob(70, 1<<20)
	var requests atomic.Int32
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		if requests.Add(1) == 1 {
			// Promise everything, send a third, drop the connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:len(data)/3])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	open := func(ctx context.Context, offset int64) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return nil, err
		}
		if offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		if want := map[bool]int{false: http.StatusOK, true: http.StatusPartialContent}[offset > 0]; resp.StatusCode != want {
			resp.Body.Close()
			return nil, fmt.Errorf("status %s, want %d", resp.Status, want)
		}
		return resp.Body, nil
	}
	s := openStore(t)
	if _, err := ingestAll(t, s, desc, open); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("first ingest: %v, want an unexpected EOF", err)
	}
	got, err := ingestAll(t, s, desc, open)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed ingest: %d bytes, %v", len(got), err)
	}
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-", len(data)/3) {
		t.Errorf("Range headers %q, want none then from byte %d", ranges, len(data)/3)
	}
	assertNoPartials(t, s)
}

// writePartial leaves b as the partial of desc, as a writer killed at that
// point would.
func writePartial(t *testing.T, s *Store, hex string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(s.ingest+"/"+hex, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.ingest+"/"+hex+"/data", b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIngestOfACompletePartialFetchesNothing(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(80, 70_000)
	writePartial(t, s, desc.Digest.Encoded(), data)
	src := &source{data: data}
	if got, err := ingestAll(t, s, desc, src.open); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ingest: %d bytes, %v", len(got), err)
	}
	if calls := src.calls(); len(calls) != 0 {
		t.Errorf("open was called at %v, want never", calls)
	}
	assertNoPartials(t, s)
}

func TestIngestDiscardsAnOversizedOrWrongPartial(t *testing.T) {
	s := openStore(t)
	data, desc := testBlob(81, 70_000)
	writePartial(t, s, desc.Digest.Encoded(), append(bytes.Clone(data), 1, 2, 3))
	src := &source{data: data}
	if got, err := ingestAll(t, s, desc, src.open); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ingest over an oversized partial: %d bytes, %v", len(got), err)
	}
	if calls := src.calls(); len(calls) != 1 || calls[0] != 0 {
		t.Errorf("open was called at %v, want [0]", calls)
	}

	// A partial whose bytes are wrong fails the digest once, is removed,
	// and the next ingest starts over.
	data2, desc2 := testBlob(82, 70_000)
	bad := bytes.Clone(data2[:30_000])
	bad[10] ^= 1
	writePartial(t, s, desc2.Digest.Encoded(), bad)
	src2 := &source{data: data2}
	if _, err := ingestAll(t, s, desc2, src2.open); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ingest over a corrupt partial: %v, want ErrDigestMismatch", err)
	}
	if got, err := ingestAll(t, s, desc2, src2.open); err != nil || !bytes.Equal(got, data2) {
		t.Fatalf("ingest after the mismatch: %v", err)
	}
	if calls := src2.calls(); len(calls) != 2 || calls[0] != 30_000 || calls[1] != 0 {
		t.Errorf("open was called at %v, want [30000 0]", calls)
	}
	assertNoPartials(t, s)
}
