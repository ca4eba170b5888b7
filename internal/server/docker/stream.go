package docker

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/image"
)

// progressInterval is how often a layer's byte counts are sent: the
// image store may report every read, the client redraws at most this
// often anyway.
const progressInterval = 100 * time.Millisecond

// jsonStream writes a route's progress as docker's stream of JSON
// messages, one per line, flushed as they go. The 200 status is sent with
// the first message, so a failure before any progress is still answered
// with its own status.
//
// Safe for use from several goroutines: the image store reports layers in
// parallel.
type jsonStream struct {
	mu       sync.Mutex
	w        http.ResponseWriter
	rc       *http.ResponseController
	enc      *json.Encoder
	started  bool
	err      error                // first write error: the client is gone
	lastSent map[string]time.Time // per-ID time of the last counted progress line
	now      func() time.Time
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonStream{w: w, rc: http.NewResponseController(w), enc: enc,
		lastSent: map[string]time.Time{}, now: time.Now}
}

// send writes one message and flushes it.
func (s *jsonStream) send(m any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(m)
}

func (s *jsonStream) sendLocked(m any) error {
	if s.err != nil {
		return s.err
	}
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
	if err := s.enc.Encode(m); err != nil {
		s.err = err
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
	}
	return s.err
}

// status sends a whole-operation line ("Digest: ...").
func (s *jsonStream) status(text string) error {
	return s.send(jsonstream.Message{Status: text})
}

// begin sends the 200 status if no message has, so that a stream that
// succeeded without a line still answers with an (empty) JSON stream.
func (s *jsonStream) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started && s.err == nil {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
}

// countedStatuses are the layer statuses whose byte counts clients draw
// as a bar; others ("Pushed", "Pull complete") carry an empty
// progressDetail, as dockerd sends them, so that clients without a
// terminal print them.
var countedStatuses = map[string]bool{
	"Downloading": true, "Extracting": true, "Pushing": true, "Loading layer": true,
}

// progress sends one line of the image store's progress. Lines that only
// move a byte count forward are thinned to one per progressInterval per
// layer; the last one (current == total) always goes out.
func (s *jsonStream) progress(p image.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == "" {
		s.sendLocked(jsonstream.Message{Status: p.Status})
		return
	}
	m := jsonstream.Message{ID: p.ID, Status: p.Status, Progress: &jsonstream.Progress{}}
	if countedStatuses[p.Status] && (p.Total > 0 || p.Current > 0) {
		key := p.ID + "\x00" + p.Status
		now := s.now()
		if p.Current < p.Total && now.Sub(s.lastSent[key]) < progressInterval {
			return
		}
		s.lastSent[key] = now
		m.Progress = &jsonstream.Progress{Current: p.Current, Total: p.Total}
	}
	s.sendLocked(m)
}

// fail ends the stream with err. Before the first message it returns err
// for ServeHTTP to answer with its status; after it, err becomes the
// stream's last line, as errorDetail, and fail returns nil.
func (s *jsonStream) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return err
	}
	s.sendLocked(errorLine{
		Message:      jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}},
		ErrorMessage: err.Error(),
	})
	return nil
}

// errorLine is the last line of a failed stream. Besides errorDetail it
// carries the older "error" string that the wire type no longer has and
// that dockerd still writes, for clients that read only that.
type errorLine struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// wasStarted reports whether the 200 response has been sent.
func (s *jsonStream) wasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}
