package docker

import (
	"fmt"
	"net/http"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-project/berth/internal/image"
)

// pushImage answers POST /images/{name}/push?tag=: "The push refers to
// repository [...]", a line per layer event, then "<tag>: digest: ...
// size: ...", as dockerd writes them.
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
	ctx := r.Context()
	ref := named.String()
	img, err := s.images.Get(ctx, ref)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	stream.status("The push refers to repository [" + named.Name() + "]")
	err = s.images.Push(ctx, ref, image.PushOptions{Auth: auth, Progress: stream.progress})
	if err != nil {
		return stream.fail(registryAuthFailure(err))
	}
	// Push may have resolved the image anew; its manifest is what was sent.
	if pushed, err := s.images.Get(ctx, ref); err == nil {
		img = pushed
	}
	tag := tagOrDigest(named)
	stream.status(fmt.Sprintf("%s: digest: %s size: %d", tag, img.Target.Digest, img.Target.Size))
	s.imageEvent(events.ActionPush, reference.FamiliarString(named), reference.FamiliarName(named))
	return nil
}
