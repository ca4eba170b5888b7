package image

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/registry"
	digest "github.com/opencontainers/go-digest"
)

// List returns the images that pass opts.Filters, newest first, as docker
// lists them. Filters: dangling=true|false, label=KEY or KEY=VALUE,
// before=IMAGE, since=IMAGE, reference=PATTERN (a glob over the familiar
// name, with or without a tag), until=TIMESTAMP.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]*Image, error) {
	f, err := parseFilters(opts.Filters, "dangling", "label", "before", "since", "reference", "until")
	if err != nil {
		return nil, err
	}
	var imgs []*Image
	err = s.meta.view(func(b buckets) error {
		var before, since *Image
		for _, v := range f["before"] {
			id, err := s.resolve(b, v)
			if err != nil {
				return err
			}
			if before, err = s.image(b, id); err != nil {
				return err
			}
		}
		for _, v := range f["since"] {
			id, err := s.resolve(b, v)
			if err != nil {
				return err
			}
			if since, err = s.image(b, id); err != nil {
				return err
			}
		}
		c := b.images.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			img, err := s.image(b, digest.Digest(k))
			if err != nil {
				return err
			}
			ok, err := f.match(img, before, since)
			if err != nil {
				return err
			}
			if ok {
				imgs = append(imgs, img)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].Created.After(imgs[j].Created) })
	return imgs, nil
}

type filters map[string][]string

func parseFilters(in map[string][]string, allowed ...string) (filters, error) {
	for k := range in {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, invalidf("invalid filter '%s'", k)
		}
	}
	return filters(in), nil
}

func (f filters) match(img *Image, before, since *Image) (bool, error) {
	for _, v := range f["dangling"] {
		switch strings.ToLower(v) {
		case "true", "1":
			if len(img.Names) > 0 {
				return false, nil
			}
		case "false", "0":
			if len(img.Names) == 0 {
				return false, nil
			}
		default:
			return false, invalidf("invalid filter 'dangling=%s'", v)
		}
	}
	for _, v := range f["label"] {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := img.Config.Config.Labels[k]
		if !ok || (hasValue && got != want) {
			return false, nil
		}
	}
	if before != nil && !img.Created.Before(before.Created) {
		return false, nil
	}
	if since != nil && !img.Created.After(since.Created) {
		return false, nil
	}
	for _, v := range f["until"] {
		t, err := parseTimestamp(v)
		if err != nil {
			return false, err
		}
		if !img.Created.Before(t) {
			return false, nil
		}
	}
	if pats := f["reference"]; len(pats) > 0 {
		ok := false
		for _, pat := range pats {
			for _, n := range img.Names {
				if matchReference(pat, n) {
					ok = true
				}
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// matchReference matches a docker reference filter against a stored
// name: the pattern is a glob over the familiar name, matched against the
// repository alone when it has no tag.
func matchReference(pattern, name string) bool {
	ref, err := registry.ParseReference(name)
	if err != nil {
		return false
	}
	familiar := ref.Familiar() // busybox:latest
	repo, _, _ := strings.Cut(familiar, ":")
	for _, candidate := range []string{familiar, repo, ref.String(), ref.Name()} {
		if ok, _ := path.Match(pattern, candidate); ok {
			return true
		}
	}
	return false
}

// parseTimestamp reads docker's filter and --since timestamps: RFC 3339,
// a date, Unix seconds (with fractions), or a duration before now ("10m").
func parseTimestamp(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if n, _ := fmt.Sscanf(v, "%d.%d", &sec, &nsec); n >= 1 {
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, invalidf("invalid timestamp %q: want RFC 3339, a date, Unix seconds or a duration", v)
}

// Tag points target at the image source means.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	ref, err := registry.ParseReference(target)
	if err != nil {
		return classify(ErrInvalid, err)
	}
	if ref.Digest() != "" {
		return invalidf("refusing to create a tag with a digest reference: %s", target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta.update(func(b buckets) error {
		id, err := s.resolve(b, source)
		if err != nil {
			return err
		}
		if err := b.names.Put([]byte(nameKey(ref)), []byte(id)); err != nil {
			return err
		}
		var rec record
		if _, err := getJSON(b.images, id.String(), &rec); err != nil {
			return err
		}
		rec.Tagged = time.Now().UTC()
		return putJSON(b.images, id.String(), rec)
	})
}
