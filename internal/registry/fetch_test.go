package registry_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
)

// contentOpenFunc is the shape of internal/content's OpenFunc.
type contentOpenFunc func(ctx context.Context, offset int64) (io.ReadCloser, error)

func TestFetchResumesFromOffset(t *testing.T) {
	t.Parallel()
	r, _ := seeded(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	res, err := c.Resolve(ctx, mustRef(t, r.Host+"/"+busyboxRepo), hostPlatform(), nil)
	if err != nil {
		t.Fatal(err)
	}
	layer := res.Parsed.Layers[0]
	full := layoutBlob(t, layer.Digest)
	var open contentOpenFunc = c.Opener(res.Ref, layer, nil)

	read := func(off int64) []byte {
		t.Helper()
		rc, err := open(ctx, off)
		if err != nil {
			t.Fatalf("open at %d: %v", off, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read from %d: %v", off, err)
		}
		return b
	}
	for _, off := range []int64{0, 1, layer.Size / 2, layer.Size - 1, layer.Size} {
		if got := read(off); !bytes.Equal(got, full[off:]) {
			t.Errorf("from offset %d: %d bytes, want the last %d of the blob", off, len(got), layer.Size-off)
		}
	}

	// A download cut short and resumed where it stopped is the blob.
	rc, err := open(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, layer.Size/3)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	rest := read(int64(len(first)))
	if digest.FromBytes(append(first, rest...)) != layer.Digest {
		t.Errorf("resumed download does not hash to %s", layer.Digest)
	}

	for _, off := range []int64{-1, layer.Size + 1} {
		if _, err := open(ctx, off); err == nil || !strings.Contains(err.Error(), "offset") {
			t.Errorf("open at %d: %v, want an offset error", off, err)
		}
	}
}

func TestFetchHoldsTheRegistryToTheDescriptorSize(t *testing.T) {
	t.Parallel()
	r, _ := seeded(t)
	c := newClient(t, registry.Config{})
	ctx := ctxTimeout(t, 30*time.Second)
	ref := mustRef(t, r.Host+"/"+busyboxRepo)
	res, err := c.Resolve(ctx, ref, hostPlatform(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Descriptors that lie about the size, as a hostile manifest would.
	for _, tc := range []struct {
		delta, offset int64
		want          string
	}{
		{-10, 0, "Content-Length"},
		{+10, 0, "Content-Length"},
		{-10, 100, "partial content"},
		{+10, 100, "partial content"},
	} {
		d := res.Parsed.Layers[0]
		d.Size += tc.delta
		rc, err := c.Fetch(ctx, ref, d, tc.offset, nil)
		if err == nil {
			rc.Close()
			t.Errorf("size %+d from %d: opened, want an error", tc.delta, tc.offset)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/blobs/"+d.Digest.String()) {
			t.Errorf("size %+d from %d: %v, want an error about %s naming the blob", tc.delta, tc.offset, err, tc.want)
		}
	}
}
