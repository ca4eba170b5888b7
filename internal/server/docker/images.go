package docker

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/image"
)

// listFilters are the filters GET /images/json accepts.
var listFilters = []string{"before", "dangling", "label", "reference", "since", "until"}

// listImages answers GET /images/json.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, listFilters...)
	if err != nil {
		return err
	}
	for _, v := range filters["dangling"] {
		if _, err := strconv.ParseBool(v); err != nil {
			return badRequest("invalid filter 'dangling=%s': want true or false", v)
		}
	}
	imgs, err := s.images.List(r.Context(), image.ListOptions{All: boolValue(r, "all"), Filters: filters})
	if err != nil {
		return err
	}
	out := summarize(r.Context(), imgs, boolValue(r, "shared-size"))
	if patterns := filters["reference"]; len(patterns) > 0 {
		// As dockerd: an image found by reference lists only the names
		// that matched.
		for i := range out {
			out[i].RepoTags = matchingRefs(out[i].RepoTags, patterns)
			out[i].RepoDigests = matchingRefs(out[i].RepoDigests, patterns)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// matchingRefs keeps the references that match one of the patterns as
// docker's reference filter does ("busybox", "busybox:*", "*/app:v1").
func matchingRefs(refs, patterns []string) []string {
	kept := []string{}
	for _, ref := range refs {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			continue
		}
		for _, p := range patterns {
			if ok, _ := reference.FamiliarMatch(p, named); ok {
				kept = append(kept, ref)
				break
			}
		}
	}
	return kept
}

// summarize converts images to docker's list entries, newest first as
// dockerd lists them. With shared, SharedSize counts the bytes of layers
// that another listed image also has; without it, SharedSize is -1
// ("not computed").
func summarize(ctx context.Context, imgs []*image.Image, shared bool) []imagetypes.Summary {
	users := map[digest.Digest]int{}
	if shared {
		for _, img := range imgs {
			for _, l := range img.Layers {
				users[l.ChainID]++
			}
		}
	}
	out := make([]imagetypes.Summary, 0, len(imgs))
	for _, img := range imgs {
		sm := imagetypes.Summary{
			ID:          img.ID.String(),
			RepoTags:    familiarAll(img.Names),
			RepoDigests: familiarAll(img.RepoDigests),
			Created:     img.Created.Unix(),
			Size:        img.Size,
			SharedSize:  -1,
			Labels:      img.Config.Config.Labels,
			// berthd runs no containers yet: no image is in use.
			Containers: 0,
		}
		if sm.Labels == nil {
			sm.Labels = map[string]string{}
		}
		if !versionBefore(ctx, "1.48") {
			t := img.Target
			sm.Descriptor = &t
		}
		if shared {
			sm.SharedSize = 0
			for _, l := range img.Layers {
				if users[l.ChainID] > 1 {
					sm.SharedSize += l.Size
				}
			}
		}
		out = append(out, sm)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out
}

// inspectImage answers GET /images/{name}/json.
func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	img, err := s.images.Get(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.inspectResponse(r.Context(), img))
}

func (s *Server) inspectResponse(ctx context.Context, img *image.Image) imagetypes.InspectResponse {
	cfg := img.Config
	layers := make([]string, 0, len(cfg.RootFS.DiffIDs))
	for _, d := range cfg.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	var comment string
	if n := len(cfg.History); n > 0 {
		comment = cfg.History[n-1].Comment
	}
	var created string
	if cfg.Created != nil {
		created = cfg.Created.UTC().Format(time.RFC3339Nano)
	} else if !img.Created.IsZero() {
		created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	imgCfg := cfg.Config
	resp := imagetypes.InspectResponse{
		ID:           img.ID.String(),
		RepoTags:     familiarAll(img.Names),
		RepoDigests:  familiarAll(img.RepoDigests),
		Comment:      comment,
		Created:      created,
		Author:       cfg.Author,
		Config:       &imgCfg,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		OsVersion:    cfg.OSVersion,
		Size:         img.Size,
		// The layers live in the snapshotter, named by chain ID, as in
		// docker's containerd image store, which also gives no paths.
		GraphDriver: &storage.DriverData{Name: s.storageDriver(), Data: nil},
		RootFS:      imagetypes.RootFS{Type: "layers", Layers: layers},
		Metadata:    imagetypes.Metadata{LastTagTime: img.Pulled},
	}
	if !versionBefore(ctx, "1.48") {
		t := img.Target
		resp.Descriptor = &t
	}
	return resp
}

// imageHistory answers GET /images/{name}/history.
func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	hist, err := s.images.History(r.Context(), vars["name"])
	if err != nil {
		return err
	}
	out := make([]imagetypes.HistoryResponseItem, 0, len(hist))
	for _, h := range hist {
		tags := familiarAll(h.Tags)
		out = append(out, imagetypes.HistoryResponseItem{
			ID: h.ID, Created: h.Created.Unix(), CreatedBy: h.CreatedBy,
			Size: h.Size, Comment: h.Comment, Tags: tags,
		})
	}
	return writeJSON(w, http.StatusOK, out)
}

// tagImage answers POST /images/{name}/tag?repo=&tag=.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	q := r.URL.Query()
	if q.Get("repo") == "" {
		return badRequest("repo parameter is required")
	}
	target, err := targetReference(q.Get("repo"), q.Get("tag"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.images.Tag(ctx, vars["name"], target.String()); err != nil {
		return err
	}
	id := vars["name"]
	if img, err := s.images.Get(ctx, target.String()); err == nil {
		id = img.ID.String()
	}
	s.imageEvent(events.ActionTag, id, familiar(target.String()))
	w.WriteHeader(http.StatusCreated)
	return nil
}

// removeImage answers DELETE /images/{name}?force=&noprune=.
func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	// The untag events name the image by ID, as dockerd's do.
	var id string
	if img, err := s.images.Get(r.Context(), vars["name"]); err == nil {
		id = img.ID.String()
	}
	res, err := s.images.Remove(r.Context(), vars["name"], boolValue(r, "force"), boolValue(r, "noprune"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.deleteResponses(res, id))
}

// deleteResponses converts removal results and announces them: an untag
// event per name, a delete event per image. id is the image the names
// pointed at, when known.
func (s *Server) deleteResponses(res []image.RemoveResult, id string) []imagetypes.DeleteResponse {
	out := make([]imagetypes.DeleteResponse, 0, len(res))
	for _, rr := range res {
		d := imagetypes.DeleteResponse{Untagged: familiar(rr.Untagged), Deleted: rr.Deleted}
		switch {
		case d.Untagged != "":
			actor := id
			if actor == "" {
				actor = d.Untagged
			}
			s.imageEvent(events.ActionUnTag, actor, d.Untagged)
		case d.Deleted != "":
			s.imageEvent(events.ActionDelete, d.Deleted, d.Deleted)
		}
		out = append(out, d)
	}
	return out
}

// pruneImages answers POST /images/prune?filters=. dangling=false asks
// for every unused image, not only the untagged ones.
func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	filters, err := parseFilters(r, "dangling", "label", "label!", "until")
	if err != nil {
		return err
	}
	all := false
	for _, v := range filters["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("invalid filter 'dangling=%s': want true or false", v)
		}
		all = !b
	}
	delete(filters, "dangling")
	res, reclaimed, err := s.images.Prune(r.Context(), all, filters)
	if err != nil {
		return err
	}
	report := imagetypes.PruneReport{ImagesDeleted: s.deleteResponses(res, "")}
	if reclaimed > 0 {
		report.SpaceReclaimed = uint64(reclaimed)
	}
	s.events.Publish(events.Message{Type: events.ImageEventType, Action: events.ActionPrune,
		Actor: events.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatInt(reclaimed, 10)}}})
	return writeJSON(w, http.StatusOK, report)
}

// imageEvent publishes an image event in dockerd's shape: the actor's ID
// is the image ID or reference the action was about, its "name"
// attribute the reference involved.
func (s *Server) imageEvent(action events.Action, id, name string) {
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	s.events.Publish(events.Message{Type: events.ImageEventType, Action: action,
		Actor: events.Actor{ID: id, Attributes: attrs}})
}
