package registry

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// maxReferenceLen bounds what ParseReference hands to the reference
// grammar's regular expressions: a repository path may be 255 bytes, a tag
// 128, a digest about 135, a domain a few hundred. Anything longer is not a
// reference, and hostile API input should not cost regexp time.
const maxReferenceLen = 1024

// DockerHubDomain is the domain docker gives names without one.
const DockerHubDomain = "docker.io"

// Reference is a normalised image reference: a repository on a registry
// with a tag, a digest or both. The zero value is not a valid reference;
// make one with ParseReference.
type Reference struct {
	domain string // "docker.io", "127.0.0.1:5000"
	path   string // "library/busybox"
	tag    string // "latest", may be empty when digest is set
	digest digest.Digest
}

// ParseReference parses s with docker's rules: a name without a domain is
// on docker.io, a docker.io name without a slash is under library/, and a
// name with neither tag nor digest gets the tag "latest".
//
//	busybox                    -> docker.io/library/busybox:latest
//	user/app                   -> docker.io/user/app:latest
//	127.0.0.1:5000/x@sha256:…  -> 127.0.0.1:5000/x@sha256:…
//	busybox:1.36@sha256:…      -> docker.io/library/busybox:1.36@sha256:… (both kept)
//
// Errors wrap ErrInvalidReference and name the input.
func ParseReference(s string) (Reference, error) {
	if len(s) > maxReferenceLen {
		return Reference{}, invalidReference(s[:64]+"…", fmt.Errorf("invalid reference format: longer than %d bytes", maxReferenceLen))
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, invalidReference(s, err)
	}
	r := Reference{domain: reference.Domain(named), path: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.digest = d.Digest()
		// The grammar accepts any algorithm name; only registered ones can
		// be verified, and an unverifiable pin is no pin at all.
		if err := r.digest.Validate(); err != nil {
			return Reference{}, invalidReference(s, fmt.Errorf("invalid reference format: digest %s: %w", r.digest, err))
		}
	}
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r, nil
}

func invalidReference(s string, err error) error {
	return &Error{
		Kind: ErrInvalidReference,
		Ref:  s,
		Err:  err,
		msg:  fmt.Sprintf("parse reference %q: %v", s, err),
	}
}

// Domain is the registry's host[:port] as docker names it ("docker.io" for
// Docker Hub, whose API is served at index.docker.io).
func (r Reference) Domain() string { return r.domain }

// Path is the repository path on the registry ("library/busybox").
func (r Reference) Path() string { return r.path }

// Name is the repository without tag or digest ("docker.io/library/busybox").
func (r Reference) Name() string { return r.domain + "/" + r.path }

// Tag is the tag, or "" for a reference by digest only.
func (r Reference) Tag() string { return r.tag }

// Digest is the digest, or "" for a reference by tag only.
func (r Reference) Digest() digest.Digest { return r.digest }

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r.path == "" }

// String is the normalised form: "docker.io/library/busybox:latest",
// "127.0.0.1:5000/x@sha256:…", "docker.io/library/busybox:1@sha256:…".
func (r Reference) String() string {
	s := r.Name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Familiar is the short form docker prints: "busybox:latest",
// "user/app:1", "127.0.0.1:5000/x@sha256:…".
func (r Reference) Familiar() string {
	return familiarName(r.domain, r.path) + r.suffix()
}

// FamiliarName is Familiar without tag or digest ("busybox").
func (r Reference) FamiliarName() string { return familiarName(r.domain, r.path) }

func (r Reference) suffix() string {
	s := ""
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

func familiarName(domain, path string) string {
	if domain != DockerHubDomain {
		return domain + "/" + path
	}
	if rest, ok := strings.CutPrefix(path, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return path
}

// WithDigest returns r pinned to d, keeping its tag.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.digest = d
	return r
}

// WithTag returns r with tag t and no digest.
func (r Reference) WithTag(t string) Reference {
	r.tag, r.digest = t, ""
	return r
}

// identifier is what the manifest URL names: the digest when there is one
// (docker pulls "name:tag@digest" by digest), else the tag.
func (r Reference) identifier() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}
