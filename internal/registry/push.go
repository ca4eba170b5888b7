package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is a manifest or index to push: its descriptor and its bytes.
type Manifest struct {
	Descriptor ocispec.Descriptor
	Bytes      []byte
}

// PushSpec is what Upload pushes.
type PushSpec struct {
	// Root is pushed last, under ref's tag (or by digest when ref has
	// only a digest): an image manifest, or an index.
	Root Manifest
	// Manifests are the manifests an index Root names; each is pushed by
	// digest before Root.
	Manifests []Manifest
	// Blobs are the configs and layers the manifests name; those the
	// registry lacks are uploaded, read through Open.
	Blobs []ocispec.Descriptor
	Open  func(ocispec.Descriptor) (io.ReadCloser, error)
	// MountFrom names repositories on the same registry that may hold the
	// blobs: a missing blob is mounted from them (no upload) when the
	// registry allows it.
	MountFrom []string
	// Progress, when set, hears each blob's "Preparing", then "Layer
	// already exists", "Mounted from <repo>" or "Pushing" (current/total
	// bytes) and "Pushed". It is called from several goroutines.
	Progress func(desc ocispec.Descriptor, status string, current, total int64)
}

// pushConcurrency is how many blobs upload at once (docker's default is 5;
// berth's machines have 2 cores and blobs are read from local disk).
const pushConcurrency = 3

// progressEvery is how many bytes pass between "Pushing" reports.
const progressEvery = 512 << 10

// Push uploads an image: the blobs ref's registry lacks, then the
// manifest under ref's tag. It is Upload with a single manifest; progress
// may be nil.
func (c *Client) Push(ctx context.Context, ref Reference, manifest ocispec.Descriptor, manifestBytes []byte,
	blobs []ocispec.Descriptor, open func(ocispec.Descriptor) (io.ReadCloser, error),
	progress func(desc ocispec.Descriptor, status string, current, total int64), auth *Auth) error {
	return c.Upload(ctx, ref, PushSpec{
		Root:     Manifest{Descriptor: manifest, Bytes: manifestBytes},
		Blobs:    blobs,
		Open:     open,
		Progress: progress,
	}, auth)
}

// Upload pushes to ref's registry (never a mirror) what it lacks of spec's
// blobs, then spec's manifests and finally spec.Root. Blobs are checked
// with HEAD, mounted when MountFrom allows, otherwise uploaded in one
// monolithic PUT; each step is retried on network errors, 5xx and 429.
// Manifests are checked against their descriptors and the size cap
// before anything is sent.
func (c *Client) Upload(ctx context.Context, ref Reference, spec PushSpec, auth *Auth) error {
	name := ref.Familiar()
	if ref.IsZero() {
		return &Error{Kind: ErrInvalidReference, msg: "push: empty reference"}
	}
	if spec.Open == nil && len(spec.Blobs) > 0 {
		return fmt.Errorf("push %s: no Open function for the blobs", name)
	}
	for _, m := range append([]Manifest{spec.Root}, spec.Manifests...) {
		if err := checkPushManifest(name, m); err != nil {
			return err
		}
	}
	if ref.Digest() != "" && ref.Digest() != spec.Root.Descriptor.Digest {
		return fmt.Errorf("push %s: the reference pins %s but the manifest is %s", name, ref.Digest(), spec.Root.Descriptor.Digest)
	}
	progress := spec.Progress
	if progress == nil {
		progress = func(ocispec.Descriptor, string, int64, int64) {}
	}
	host := ref.Domain()
	if host == DockerHubDomain {
		host = dockerHubHost
	}
	p := &pusher{
		c: c, ref: ref, spec: spec, auth: auth, progress: progress,
		ep: endpoint{host: host, insecure: c.isInsecure(ctx, host)},
	}

	// One session for all blobs: made here, before the uploads start, so
	// they do not each ping and fetch a token.
	if err := c.withRetry(ctx, func() error { _, err := p.session(ctx); return err }); err != nil {
		return err
	}
	blobs := uniqueBlobs(spec.Blobs)
	for _, b := range blobs {
		progress(b, "Preparing", 0, b.Size)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, pushConcurrency)
	)
	for _, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := p.blob(ctx, b); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, m := range spec.Manifests {
		if err := p.manifest(ctx, m, m.Descriptor.Digest.String()); err != nil {
			return err
		}
	}
	ident := ref.Tag()
	if ident == "" {
		ident = spec.Root.Descriptor.Digest.String()
	}
	return p.manifest(ctx, spec.Root, ident)
}

func checkPushManifest(name string, m Manifest) error {
	d := m.Descriptor
	if err := checkDescriptor(d); err != nil {
		return invalidManifest(name, "push %s: manifest: %v", name, err)
	}
	if !isManifestType(d.MediaType) && !isIndexType(d.MediaType) {
		return invalidManifest(name, "push %s: manifest %s: media type %q is not a manifest or index", name, d.Digest, d.MediaType)
	}
	if len(m.Bytes) > MaxManifestSize {
		return invalidManifest(name, "push %s: manifest %s is %d bytes, more than the %d allowed", name, d.Digest, len(m.Bytes), MaxManifestSize)
	}
	if int64(len(m.Bytes)) != d.Size || d.Digest.Algorithm().FromBytes(m.Bytes) != d.Digest {
		return invalidManifest(name, "push %s: manifest bytes do not match descriptor %s (%d bytes)", name, d.Digest, d.Size)
	}
	return nil
}

func uniqueBlobs(in []ocispec.Descriptor) []ocispec.Descriptor {
	seen := map[digest.Digest]bool{}
	var out []ocispec.Descriptor
	for _, b := range in {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			out = append(out, b)
		}
	}
	return out
}

// pusher is one Push's state.
type pusher struct {
	c        *Client
	ref      Reference
	ep       endpoint
	spec     PushSpec
	auth     *Auth
	progress func(ocispec.Descriptor, string, int64, int64)
}

func (p *pusher) session(ctx context.Context) (*session, error) {
	s, err := p.c.session(ctx, p.ep, p.ref.Path(), true, p.spec.MountFrom, p.auth)
	if err != nil {
		return nil, classify(err, opPush, p.ref, "")
	}
	return s, nil
}

// blob makes one blob present in the repository.
func (p *pusher) blob(ctx context.Context, desc ocispec.Descriptor) error {
	if err := checkDescriptor(desc); err != nil {
		return fmt.Errorf("push %s: blob: %w", p.ref.Familiar(), err)
	}
	what := "blob " + desc.Digest.String()
	return p.c.withRetry(ctx, func() error {
		s, err := p.session(ctx)
		if err != nil {
			return err
		}
		err = p.upload(ctx, s, desc)
		if err != nil && isNetworkError(err) {
			p.c.forget(s)
		}
		return classify(err, opPush, p.ref, what)
	})
}

func (p *pusher) upload(ctx context.Context, s *session, desc ocispec.Descriptor) error {
	resp, err := s.do(ctx, http.MethodHead, s.url("blobs", desc.Digest.String()), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		p.progress(desc, "Layer already exists", desc.Size, desc.Size)
		return nil
	case http.StatusNotFound:
	default:
		return transport.CheckError(resp, http.StatusOK, http.StatusNotFound)
	}

	uploads := s.url("blobs", "uploads/")
	var location *url.URL
	for _, from := range p.spec.MountFrom {
		if from == s.path {
			continue
		}
		q := url.Values{"mount": {desc.Digest.String()}, "from": {from}}
		resp, err := s.do(ctx, http.MethodPost, uploads+"?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			p.progress(desc, "Mounted from "+from, desc.Size, desc.Size)
			return nil
		case http.StatusAccepted:
			// Not mountable from there; the registry opened an upload.
			location, err = resp.Location()
			if err != nil {
				return fmt.Errorf("POST %s: %w", uploads, err)
			}
		default:
			return transport.CheckError(resp, http.StatusCreated, http.StatusAccepted)
		}
		break
	}
	if location == nil {
		resp, err := s.do(ctx, http.MethodPost, uploads, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := transport.CheckError(resp, http.StatusAccepted); err != nil {
			return err
		}
		if location, err = resp.Location(); err != nil {
			return fmt.Errorf("POST %s: %w", uploads, err)
		}
	}
	q := location.Query()
	q.Set("digest", desc.Digest.String())
	location.RawQuery = q.Encode()

	rc, err := p.spec.Open(desc)
	if err != nil {
		return fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	body := &progressReader{r: rc, desc: desc, report: p.progress}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, location.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusCreated); err != nil {
		return err
	}
	p.progress(desc, "Pushed", desc.Size, desc.Size)
	return nil
}

// manifest PUTs one manifest under ident (a tag or its digest).
func (p *pusher) manifest(ctx context.Context, m Manifest, ident string) error {
	return p.c.withRetry(ctx, func() error {
		s, err := p.session(ctx)
		if err != nil {
			return err
		}
		u := s.url("manifests", ident)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(m.Bytes))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", m.Descriptor.MediaType)
		resp, err := s.client.Do(req)
		if err != nil {
			if isNetworkError(err) {
				p.c.forget(s)
			}
			return classify(err, opPush, p.ref, "manifest")
		}
		defer resp.Body.Close()
		if err := transport.CheckError(resp, http.StatusCreated); err != nil {
			return classify(err, opPush, p.ref, "manifest")
		}
		if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != m.Descriptor.Digest.String() {
			return invalidManifest(p.ref.Familiar(), "push %s: the registry stored manifest %s as %s", p.ref.Familiar(), m.Descriptor.Digest, h)
		}
		return nil
	})
}

// progressReader reports "Pushing" as bytes go out.
type progressReader struct {
	r      io.Reader
	desc   ocispec.Descriptor
	report func(ocispec.Descriptor, string, int64, int64)
	n, at  int64
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n-r.at >= progressEvery || (err == io.EOF && r.n != r.at) {
		r.at = r.n
		r.report(r.desc, "Pushing", r.n, r.desc.Size)
	}
	return n, err
}
