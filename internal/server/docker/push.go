package docker

import (
	"net/http"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-project/berth/internal/image"
)

// pushImage answers POST /images/{name}/push?tag=. The image store writes
// the lines ("The push refers to repository [...]", a line per layer
// event, "<tag>: digest: ... size: ...") as dockerd does.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	named, err := reference.ParseNormalizedNamed(vars["name"])
	if err != nil {
		return badRequest("invalid image name %q: %v", vars["name"], err)
	}
	if tag := r.URL.Query().Get("tag"); tag != "" {
		if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
			return badRequest("invalid tag parameter %q: %v", tag, err)
		}
	}
	named = reference.TagNameOnly(named)
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	if auth == nil && r.Header.Get(registry.AuthHeader) == "" && r.ContentLength > 0 {
		// Clients older than the header sent the credential as the body.
		var ac registry.AuthConfig
		if err := decodeJSONBody(r, &ac); err != nil {
			return err
		}
		if ac.Username != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
			auth = &image.Auth{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
		}
	}
	stream := newJSONStream(w)
	err = s.images.Push(r.Context(), named.String(), image.PushOptions{Auth: auth, Progress: stream.progress})
	if err != nil {
		return stream.fail(registryAuthFailure(err))
	}
	stream.begin()
	s.imageEvent(events.ActionPush, reference.FamiliarString(named), reference.FamiliarName(named))
	return nil
}
