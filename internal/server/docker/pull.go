package docker

import (
	"net/http"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/image"
)

// createImage answers POST /images/create: a pull (fromImage) or an import
// of a tar from the request body (fromSrc=-).
func (s *Server) createImage(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	q := r.URL.Query()
	switch {
	case q.Get("fromSrc") != "":
		return s.importImage(w, r)
	case q.Get("fromImage") != "":
		return s.pullImage(w, r)
	}
	return badRequest("fromImage or fromSrc parameter is required")
}

// pullImage streams a pull as dockerd does: "<tag>: Pulling from <repo>",
// one line per layer event, then "Digest: ..." and "Status: ...". The
// client prints the reference itself.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	named, err := pullReference(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	platform, err := parsePlatform(q.Get("platform"))
	if err != nil {
		return err
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ref := named.String()

	var before string
	if img, err := s.images.Get(ctx, ref); err == nil {
		before = img.Target.Digest.String()
	}

	stream := newJSONStream(w)
	var announce sync.Once
	pullingFrom := func() {
		announce.Do(func() {
			stream.send(jsonstream.Message{ID: tagOrDigest(named), Status: "Pulling from " + reference.Path(named)})
		})
	}
	img, err := s.images.Pull(ctx, ref, image.PullOptions{
		Platform: platform,
		Auth:     auth,
		Progress: func(p image.Progress) {
			pullingFrom()
			stream.progress(p)
		},
	})
	if err != nil {
		return stream.fail(registryAuthFailure(err))
	}
	pullingFrom()
	stream.status("Digest: " + repoDigest(img, named))
	short := reference.FamiliarString(named)
	if before == img.Target.Digest.String() {
		stream.status("Status: Image is up to date for " + short)
	} else {
		stream.status("Status: Downloaded newer image for " + short)
	}
	s.imageEvent(events.ActionPull, short, reference.FamiliarName(named))
	return nil
}

// repoDigest is the digest a pull of named resolved: the one recorded for
// its repository, else the manifest's.
func repoDigest(img *image.Image, named reference.Named) string {
	for _, rd := range img.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil && n.Name() == named.Name() {
			if c, ok := n.(reference.Canonical); ok {
				return c.Digest().String()
			}
		}
	}
	return img.Target.Digest.String()
}

// importImage answers POST /images/create?fromSrc=-: the request body is
// a root filesystem tar. Importing from a URL is refused: berthd fetches
// nothing but registries.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		return badRequest("invalid fromSrc parameter %q: berthd imports only from the request body (fromSrc=-), not from URLs", src)
	}
	opts := image.ImportOptions{Message: q.Get("message"), Changes: q["changes"]}
	for i, c := range opts.Changes {
		opts.Changes[i] = strings.TrimSpace(c)
	}
	var name string
	if repo := q.Get("repo"); repo != "" {
		named, err := targetReference(repo, q.Get("tag"))
		if err != nil {
			return err
		}
		opts.Ref = named.String()
		name = reference.FamiliarString(named)
	} else if q.Get("tag") != "" {
		return badRequest("tag parameter given without repo")
	}
	platform, err := parsePlatform(q.Get("platform"))
	if err != nil {
		return err
	}
	opts.Platform = platform
	img, err := s.images.Import(r.Context(), r.Body, opts)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	stream.status(img.ID.String())
	s.imageEvent(events.ActionImport, img.ID.String(), name)
	return nil
}
