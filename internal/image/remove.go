package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// Remove untags or deletes what nameOrID means, as docker rmi does: a name
// is untagged, and the image deleted when no name is left; an ID deletes
// the image with all its names, which needs force when the names span
// several repositories. An image a container uses is kept unless forced,
// and even then only untagged: the container's snapshot stands on its
// layers.
func (s *Service) Remove(ctx context.Context, nameOrID string, force, noPrune bool) ([]RemoveResult, error) {
	s.gc.Lock()
	defer s.gc.Unlock()
	var results []RemoveResult
	var deleted digest.Digest
	s.mu.Lock()
	err := s.meta.update(func(b buckets) error {
		id, err := s.resolve(b, nameOrID)
		if err != nil {
			return err
		}
		names := namesOf(b, id)
		inUse := s.cfg.InUse != nil && s.cfg.InUse(id)
		byName := !isIDLike(b, nameOrID, id)
		var untag []string
		if byName {
			ref, _ := registry.ParseReference(nameOrID)
			key := nameKey(ref)
			untag = append(untag, key)
			// The repo digests of that repository go with its last tag.
			if !hasOtherTag(names, key, ref.Name()) {
				for _, n := range names {
					if strings.HasPrefix(n, ref.Name()+"@") {
						untag = append(untag, n)
					}
				}
			}
		} else {
			if !force && len(repositories(names)) > 1 {
				return classify(ErrConflict, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id)))
			}
			if inUse && !force {
				return classify(ErrConflict, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by a container", shortID(id)))
			}
			untag = names
		}
		remaining := len(names)
		for _, n := range untag {
			if err := b.names.Delete([]byte(n)); err != nil {
				return err
			}
			remaining--
			results = append(results, RemoveResult{Untagged: familiar(n)})
		}
		if remaining > 0 {
			return nil
		}
		if inUse {
			if !force {
				return classify(ErrConflict, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - image %s is being used by a container", nameOrID, shortID(id)))
			}
			return nil // a dangling image the container still stands on
		}
		deleted = id
		results = append(results, RemoveResult{Deleted: id.String()})
		return b.images.Delete([]byte(id))
	})
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if deleted != "" {
		removed, err := s.collect(ctx)
		for _, c := range removed {
			results = append(results, RemoveResult{Deleted: c.String()})
		}
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// isIDLike reports whether nameOrID named the image by its ID (full, with
// or without "sha256:", or a prefix) rather than by a name.
func isIDLike(b buckets, nameOrID string, id digest.Digest) bool {
	if nameOrID == id.String() {
		return true
	}
	if ref, err := registry.ParseReference(nameOrID); err == nil && b.names.Get([]byte(nameKey(ref))) != nil {
		return false
	}
	return strings.HasPrefix(id.Encoded(), nameOrID)
}

func hasOtherTag(names []string, except, repo string) bool {
	for _, n := range names {
		if n != except && strings.HasPrefix(n, repo+":") {
			return true
		}
	}
	return false
}

func repositories(names []string) map[string]bool {
	repos := map[string]bool{}
	for _, n := range names {
		if i := strings.LastIndexAny(n, "@"); i > 0 {
			repos[n[:i]] = true
		} else if i := strings.LastIndex(n, ":"); i > 0 && !strings.Contains(n[i:], "/") {
			repos[n[:i]] = true
		}
	}
	return repos
}

// familiar is docker's short form of a stored name (busybox:latest).
func familiar(name string) string {
	if ref, err := registry.ParseReference(name); err == nil {
		return ref.Familiar()
	}
	return name
}

// Prune deletes dangling images, or with all every image no container
// uses. Filters: until=TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE].
func (s *Service) Prune(ctx context.Context, all bool, in map[string][]string) ([]RemoveResult, int64, error) {
	f, err := parseFilters(in, "until", "label", "label!", "dangling")
	if err != nil {
		return nil, 0, err
	}
	for _, v := range f["dangling"] {
		switch strings.ToLower(v) {
		case "false", "0":
			all = true
		case "true", "1":
		default:
			return nil, 0, invalidf("invalid filter 'dangling=%s'", v)
		}
	}
	before, err := s.DiskUsage(ctx)
	if err != nil {
		return nil, 0, err
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	var results []RemoveResult
	s.mu.Lock()
	err = s.meta.update(func(b buckets) error {
		var doomed []digest.Digest
		c := b.images.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			id := digest.Digest(k)
			names := namesOf(b, id)
			if hasTag(names) && !all {
				continue
			}
			if s.cfg.InUse != nil && s.cfg.InUse(id) {
				continue
			}
			img, err := s.image(b, id)
			if err != nil {
				return err
			}
			ok, err := pruneMatch(f, img)
			if err != nil {
				return err
			}
			if ok {
				doomed = append(doomed, id)
			}
		}
		for _, id := range doomed {
			for _, n := range namesOf(b, id) {
				if err := b.names.Delete([]byte(n)); err != nil {
					return err
				}
				results = append(results, RemoveResult{Untagged: familiar(n)})
			}
			if err := b.images.Delete([]byte(id)); err != nil {
				return err
			}
			results = append(results, RemoveResult{Deleted: id.String()})
		}
		return nil
	})
	s.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	removed, err := s.collect(ctx)
	for _, c := range removed {
		results = append(results, RemoveResult{Deleted: c.String()})
	}
	if err != nil {
		return results, 0, err
	}
	after, err := s.DiskUsage(ctx)
	if err != nil {
		return results, 0, err
	}
	return results, max(before-after, 0), nil
}

func hasTag(names []string) bool {
	for _, n := range names {
		if !strings.Contains(n, "@") {
			return true
		}
	}
	return false
}

func pruneMatch(f filters, img *Image) (bool, error) {
	for _, v := range f["until"] {
		t, err := parseTimestamp(v)
		if err != nil {
			return false, err
		}
		if !img.Created.Before(t) {
			return false, nil
		}
	}
	labels := img.Config.Config.Labels
	for _, v := range f["label"] {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != want) {
			return false, nil
		}
	}
	for _, v := range f["label!"] {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		if ok && (!hasValue || got == want) {
			return false, nil
		}
	}
	return true, nil
}

// DiskUsage is the unpacked size of every layer in the store, each counted
// once however many images share it.
func (s *Service) DiskUsage(ctx context.Context) (int64, error) {
	var total int64
	err := s.meta.view(func(b buckets) error {
		return b.layers.ForEach(func(k, v []byte) error {
			var lr layerRecord
			if _, err := getJSON(b.layers, string(k), &lr); err != nil {
				return err
			}
			total += lr.Size
			return nil
		})
	})
	return total, err
}

// collect is the garbage collector: it removes the blobs and layer
// snapshots no image reaches, and extractions a crash left behind. The
// caller holds s.gc, so no pull, load or import is between writing its
// blobs and recording its image. It returns the chain IDs it removed.
func (s *Service) collect(ctx context.Context) ([]digest.Digest, error) {
	blobs := map[digest.Digest]bool{}
	chains := map[string]bool{}
	err := s.meta.view(func(b buckets) error {
		return b.images.ForEach(func(k, _ []byte) error {
			var rec record
			if _, err := getJSON(b.images, string(k), &rec); err != nil {
				return err
			}
			blobs[rec.Target.Digest] = true
			if rec.Index != nil {
				blobs[rec.Index.Digest] = true
			}
			m, err := s.readManifest(rec.Target)
			if err != nil {
				return err
			}
			blobs[m.Config.Digest] = true
			for _, l := range m.Layers {
				blobs[l.Digest] = true
			}
			cfg, err := s.readConfig(m.Config)
			if err != nil {
				return err
			}
			for _, c := range chainIDs(cfg.RootFS.DiffIDs) {
				chains[c.String()] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("image gc: %w", err)
	}

	// Snapshots: children before parents, so keep going while a pass
	// removes something. A container's snapshot keeps its parents.
	var removed []digest.Digest
	var errs []error
	for {
		var doomed []snapshot.Info
		err := s.snaps.Walk(ctx, func(info snapshot.Info) error {
			switch {
			case info.Kind == snapshot.Committed && isChainName(info.Name) && !chains[info.Name]:
				doomed = append(doomed, info)
			case info.Kind == snapshot.Active && strings.HasPrefix(info.Name, extractPrefix):
				// An extraction outside s.gc is a crash's leftover: every
				// live one runs under s.gc's read lock.
				doomed = append(doomed, info)
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("image gc: %w", err)
		}
		progress := false
		for _, info := range doomed {
			err := s.snaps.Remove(ctx, info.Name)
			switch {
			case err == nil:
				progress = true
				if info.Kind == snapshot.Committed {
					removed = append(removed, digest.Digest(info.Name))
				}
			case errors.Is(err, snapshot.ErrHasChildren):
			default:
				errs = append(errs, err)
			}
		}
		if !progress {
			break
		}
	}
	if len(removed) > 0 {
		err := s.meta.update(func(b buckets) error {
			for _, c := range removed {
				if err := b.layers.Delete([]byte(c)); err != nil {
					return err
				}
			}
			return nil
		})
		errs = append(errs, err)
	}

	err = s.content.Walk(func(info content.Info) error {
		if !blobs[info.Digest] {
			if err := s.content.Delete(info.Digest); err != nil {
				errs = append(errs, err)
			}
			s.configs.Delete(info.Digest)
		}
		return nil
	})
	errs = append(errs, err)
	return removed, errors.Join(errs...)
}

func isChainName(name string) bool {
	_, err := digest.Parse(name)
	return err == nil
}
