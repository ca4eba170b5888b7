package image

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
)

var hexPrefix = regexp.MustCompile(`^[a-f0-9]{1,64}$`)

// resolve finds the image a user means by nameOrID, in docker's order: a
// full image ID, a name (name:tag, name@digest; "latest" when neither),
// then a unique prefix of an image ID.
func (s *Service) resolve(b buckets, nameOrID string) (digest.Digest, error) {
	if d, err := digest.Parse(nameOrID); err == nil {
		if b.images.Get([]byte(d.String())) != nil {
			return d, nil
		}
		return "", noSuchImage(nameOrID)
	}
	if ref, err := registry.ParseReference(nameOrID); err == nil {
		if v := b.names.Get([]byte(nameKey(ref))); v != nil {
			return digest.Digest(v), nil
		}
	}
	if hexPrefix.MatchString(nameOrID) {
		var found digest.Digest
		prefix := []byte("sha256:" + nameOrID)
		c := b.images.Cursor()
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			if found != "" {
				return "", fmt.Errorf("%w: image ID prefix %q is ambiguous", ErrConflict, nameOrID)
			}
			found = digest.Digest(k)
		}
		if found != "" {
			return found, nil
		}
	}
	return "", noSuchImage(nameOrID)
}

// noSuchImage is docker's not-found error, naming the image as docker
// does: a reference in its familiar form with its tag.
func noSuchImage(nameOrID string) error {
	name := nameOrID
	if ref, err := registry.ParseReference(nameOrID); err == nil && !hexPrefix.MatchString(nameOrID) {
		name = ref.Familiar()
	}
	return classify(ErrNotFound, fmt.Errorf("No such image: %s", name))
}

// nameKey is the key of a reference in the names bucket: name@digest when
// it has a digest, name:tag otherwise.
func nameKey(ref registry.Reference) string {
	if d := ref.Digest(); d != "" {
		return ref.Name() + "@" + d.String()
	}
	return ref.Name() + ":" + ref.Tag()
}

// Get returns the image nameOrID means.
func (s *Service) Get(ctx context.Context, nameOrID string) (*Image, error) {
	var img *Image
	err := s.meta.view(func(b buckets) error {
		id, err := s.resolve(b, nameOrID)
		if err != nil {
			return err
		}
		img, err = s.image(b, id)
		return err
	})
	return img, err
}
