package docker

import (
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/image"
)

// saveImages answers GET /images/get?names=a&names=b with one
// docker-archive tar of them all.
func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return badRequest("names parameter is required")
	}
	return s.save(w, r, names)
}

// saveImage answers GET /images/{name}/get.
func (s *Server) saveImage(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return s.save(w, r, []string{vars["name"]})
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	ctx := r.Context()
	// Unknown names are answered with 404 before the tar begins.
	ids := make([]string, 0, len(names))
	for _, n := range names {
		img, err := s.images.Get(ctx, n)
		if err != nil {
			return err
		}
		ids = append(ids, img.ID.String())
	}
	tw := &lazyTarWriter{w: w}
	if err := s.images.Save(ctx, names, tw); err != nil {
		if tw.started {
			// Half a tar has gone out: the only honest signal left is
			// to cut the connection, so the client sees a truncated
			// stream rather than a short archive that looks whole.
			s.log.Error("image save failed mid-stream", "names", names, "err", err)
			panic(http.ErrAbortHandler)
		}
		return err
	}
	for i, n := range names {
		s.imageEvent(events.ActionSave, ids[i], familiar(n))
	}
	return nil
}

// lazyTarWriter sends the 200 status and tar content type with the first
// bytes of the archive.
type lazyTarWriter struct {
	w       http.ResponseWriter
	started bool
}

func (t *lazyTarWriter) Write(b []byte) (int, error) {
	if !t.started {
		t.started = true
		t.w.Header().Set("Content-Type", "application/x-tar")
		t.w.WriteHeader(http.StatusOK)
	}
	return t.w.Write(b)
}

// loadImages answers POST /images/load?quiet=: the body is a
// docker-archive or OCI layout tar; the answer streams each loaded name as
// "Loaded image: ..." (or "Loaded image ID: ..." for an untagged image).
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	quiet := boolValue(r, "quiet")
	stream := newJSONStream(w)
	names, err := s.images.Load(r.Context(), r.Body, func(p image.Progress) {
		// The final lines are written below, from the names Load returns.
		if quiet || strings.HasPrefix(p.Status, "Loaded image") {
			return
		}
		stream.progress(p)
	})
	if err != nil {
		return stream.fail(err)
	}
	for _, n := range names {
		// Load may answer with names or with the whole lines.
		n = strings.TrimPrefix(strings.TrimPrefix(n, "Loaded image ID: "), "Loaded image: ")
		line := "Loaded image: " + familiar(n) + "\n"
		if strings.HasPrefix(n, "sha256:") {
			line = "Loaded image ID: " + n + "\n"
		}
		stream.send(jsonstream.Message{Stream: line})
		id := n
		if img, err := s.images.Get(r.Context(), n); err == nil {
			id = img.ID.String()
		}
		s.imageEvent(events.ActionLoad, id, familiar(n))
	}
	if len(names) == 0 {
		stream.send(jsonstream.Message{Stream: ""})
	}
	return nil
}
