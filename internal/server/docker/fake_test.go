package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/events"
	"github.com/berth-project/berth/internal/image"
)

// fakeImages is an in-memory image.Backend for the HTTP layer's tests:
// what they check is the translation between the API and the Backend
// (statuses, stream shapes, parameters), not the store, which the
// end-to-end tests in test/e2e exercise for real.
type fakeImages struct {
	images   map[string]*image.Image // by normalised name
	pull     func(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error)
	lastList image.ListOptions
	pruned   struct {
		all     bool
		filters map[string][]string
	}
}

func testImage(name string, created time.Time, layers ...int64) *image.Image {
	img := &image.Image{
		ID:      digest.FromString("config " + name),
		Names:   []string{name},
		Target:  ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest " + name), Size: 527},
		Created: created,
		Pulled:  created.Add(time.Hour),
	}
	img.Config = dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}}
	img.Config.Config.Cmd = []string{"/bin/sh"}
	for i, sz := range layers {
		d := digest.FromString(fmt.Sprintf("layer %d", i))
		img.Layers = append(img.Layers, image.Layer{DiffID: d, ChainID: d, Size: sz})
		img.Config.RootFS.DiffIDs = append(img.Config.RootFS.DiffIDs, d)
		img.Size += sz
	}
	img.Config.RootFS.Type = "layers"
	return img
}

func (f *fakeImages) Pull(ctx context.Context, ref string, opts image.PullOptions) (*image.Image, error) {
	return f.pull(ctx, ref, opts)
}
func (f *fakeImages) Push(ctx context.Context, ref string, opts image.PushOptions) error {
	opts.Progress(image.Progress{Status: "The push refers to repository [127.0.0.1:5000/x]"})
	return fmt.Errorf("push %s: %w", ref, image.ErrUnauthorized)
}
func (f *fakeImages) Get(ctx context.Context, name string) (*image.Image, error) {
	if n, err := reference.ParseNormalizedNamed(name); err == nil {
		name = reference.TagNameOnly(n).String()
	}
	if img, ok := f.images[name]; ok {
		return img, nil
	}
	for _, img := range f.images {
		if img.ID.String() == name {
			return img, nil
		}
	}
	return nil, fmt.Errorf("No such image: %s: %w", name, image.ErrNotFound)
}
func (f *fakeImages) List(ctx context.Context, opts image.ListOptions) ([]*image.Image, error) {
	f.lastList = opts
	var out []*image.Image
	for _, img := range f.images {
		out = append(out, img)
	}
	return out, nil
}
func (f *fakeImages) Tag(ctx context.Context, source, target string) error {
	img, err := f.Get(ctx, source)
	if err != nil {
		return err
	}
	f.images[target] = img
	return nil
}
func (f *fakeImages) Remove(ctx context.Context, name string, force, noPrune bool) ([]image.RemoveResult, error) {
	img, err := f.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	delete(f.images, name)
	return []image.RemoveResult{{Untagged: name}, {Deleted: img.ID.String()}}, nil
}
func (f *fakeImages) Prune(ctx context.Context, all bool, filters map[string][]string) ([]image.RemoveResult, int64, error) {
	f.pruned.all, f.pruned.filters = all, filters
	return nil, 0, nil
}
func (f *fakeImages) History(ctx context.Context, name string) ([]image.HistoryEntry, error) {
	return nil, fmt.Errorf("history %s: %w", name, image.ErrNotFound)
}
func (f *fakeImages) Save(ctx context.Context, refs []string, w io.Writer) error {
	_, err := io.WriteString(w, "tar of "+fmt.Sprint(refs))
	return err
}
func (f *fakeImages) Load(ctx context.Context, r io.Reader, progress image.ProgressFunc) ([]string, error) {
	return nil, fmt.Errorf("load: %w", image.ErrInvalid)
}
func (f *fakeImages) Import(ctx context.Context, r io.Reader, opts image.ImportOptions) (*image.Image, error) {
	return nil, fmt.Errorf("import: %w", image.ErrInvalid)
}
func (f *fakeImages) DiskUsage(ctx context.Context) (int64, error) {
	var n int64
	for _, img := range f.images {
		n += img.Size
	}
	return n, nil
}

// newTestServer serves a fake store over a real HTTP server.
func newTestServer(t *testing.T, f *fakeImages) (*Server, *httptest.Server) {
	t.Helper()
	if f.images == nil {
		f.images = map[string]*image.Image{}
	}
	s := New(Config{Images: f, Events: events.NewBus(), Version: "test", DataRoot: t.TempDir(), StorageDriver: "overlay"})
	ts := httptest.NewServer(s)
	t.Cleanup(func() { s.Stop(); ts.Close() })
	return s, ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, nil)
}

func do(t *testing.T, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
