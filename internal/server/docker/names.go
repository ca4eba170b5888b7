package docker

import (
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// familiar turns a normalised reference ("docker.io/library/busybox:latest")
// into the short form dockerd's API answers with ("busybox:latest"); a
// string that is not a reference is returned as is.
func familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, familiar(r))
	}
	return out
}

// pullReference builds the reference to pull from the fromImage and tag
// parameters: the tag may be a tag or a digest, and a name without either
// pulls "latest".
func pullReference(fromImage, tag string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(fromImage))
	if err != nil {
		return nil, badRequest("invalid fromImage parameter %q: %v", fromImage, err)
	}
	if tag != "" {
		if strings.Contains(tag, ":") {
			d, err := reference.WithDigest(reference.TrimNamed(named), digestOf(tag))
			if err != nil {
				return nil, badRequest("invalid tag parameter %q: %v", tag, err)
			}
			return d, nil
		}
		t, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return nil, badRequest("invalid tag parameter %q: %v", tag, err)
		}
		return t, nil
	}
	return reference.TagNameOnly(named), nil
}

// targetReference builds the reference of tag and import from repo and tag
// parameters; repo may carry its own tag, a digest is refused.
func targetReference(repo, tag string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, badRequest("invalid repo parameter %q: %v", repo, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, badRequest("invalid repo parameter %q: refusing to create a tag with a digest reference", repo)
	}
	if tag != "" {
		if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
			return nil, badRequest("invalid tag parameter %q: %v", tag, err)
		}
	}
	return reference.TagNameOnly(named), nil
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
