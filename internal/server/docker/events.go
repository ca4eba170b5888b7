package docker

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/events"

	eventbus "github.com/berth-project/berth/internal/events"
)

// streamEvents answers GET /events?since=&until=&filters=: the past events
// since "since", then live ones until "until" (or until the client or the
// daemon goes away), one JSON object per line.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	raw, err := parseFilters(r)
	if err != nil {
		return err
	}
	filter := eventbus.Filter(raw)
	if err := filter.Validate(); err != nil {
		return badRequest("%v", err)
	}
	q := r.URL.Query()
	now := s.now()
	var since, until time.Time
	if v := q.Get("since"); v != "" {
		n, err := parseUnixTime("since", v)
		if err != nil {
			return err
		}
		since = time.Unix(0, n)
	}
	if v := q.Get("until"); v != "" {
		n, err := parseUnixTime("until", v)
		if err != nil {
			return err
		}
		until = time.Unix(0, n)
	}
	if !until.IsZero() && !since.IsZero() && until.Before(since) {
		return badRequest("since parameter must be before until parameter")
	}
	past, sub := s.events.Subscribe(filter, since)
	defer sub.Close()

	ctype := "application/json"
	// API 1.52 lets clients ask for the stream's real media type.
	switch r.Header.Get("Accept") {
	case "application/x-ndjson", "application/jsonl":
		ctype = r.Header.Get("Accept")
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	legacy := versionBefore(r.Context(), "1.52")
	write := func(m events.Message) error {
		var v any = m
		if legacy {
			v = legacyEvent(m)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
		return rc.Flush()
	}
	for _, m := range past {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return nil
		}
		if err := write(m); err != nil {
			return err
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		if !until.After(now) {
			return nil
		}
		t := time.NewTimer(until.Sub(now))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return nil
			}
			if err := write(m); err != nil {
				return err
			}
		case <-deadline:
			return nil
		case <-r.Context().Done():
			return nil
		case <-s.stopping:
			return nil
		}
	}
}

// eventWithLegacyFields is an event as API versions before 1.52 wrote it,
// with the status, id and from fields that the wire type has dropped.
type eventWithLegacyFields struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func legacyEvent(m events.Message) eventWithLegacyFields {
	e := eventWithLegacyFields{Message: m}
	if m.Type == events.ContainerEventType || m.Type == events.ImageEventType {
		e.Status, e.ID = string(m.Action), m.Actor.ID
		e.From = m.Actor.Attributes["image"]
	}
	return e
}
