package docker

import (
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"

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

// pullImage streams a pull. The image store writes the whole-image lines
// as dockerd does ("<tag>: Pulling from <repo>", "Digest: ...", "Status:
// ..."); this adds nothing but the transport, and the client prints the
// reference itself.
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
	stream := newJSONStream(w)
	_, err = s.images.Pull(r.Context(), named.String(), image.PullOptions{
		Platform: platform,
		Auth:     auth,
		Progress: stream.progress,
	})
	if err != nil {
		return stream.fail(registryAuthFailure(err))
	}
	stream.begin()
	s.imageEvent(events.ActionPull, reference.FamiliarString(named), reference.FamiliarName(named))
	return nil
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
