package events

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func imageEvent(action events.Action, id, name string) events.Message {
	return events.Message{Type: events.ImageEventType, Action: action,
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}}}
}

func TestPublishSubscribe(t *testing.T) {
	b := NewBus()
	_, sub := b.Subscribe(Filter{"event": {"tag"}}, time.Time{})
	defer sub.Close()
	b.Publish(imageEvent(events.ActionPull, "busybox:latest", "busybox"))
	b.Publish(imageEvent(events.ActionTag, "sha256:0123456789abcdef", "busybox:v1"))
	select {
	case m := <-sub.C():
		if m.Action != events.ActionTag || m.Actor.Attributes["name"] != "busybox:v1" {
			t.Fatalf("got %+v, want the tag event", m)
		}
		if m.TimeNano == 0 || m.Time == 0 || m.Scope != "local" {
			t.Errorf("event not stamped: %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no event delivered")
	}
	select {
	case m := <-sub.C():
		t.Fatalf("unexpected second event %+v", m)
	default:
	}
	if b.Listeners() != 1 {
		t.Errorf("Listeners = %d, want 1", b.Listeners())
	}
	sub.Close()
	if b.Listeners() != 0 {
		t.Errorf("Listeners after Close = %d, want 0", b.Listeners())
	}
	if _, ok := <-sub.C(); ok {
		t.Error("channel not closed by Close")
	}
}

func TestSinceReplaysHistoryInOrder(t *testing.T) {
	b := NewBus()
	base := time.Unix(1700000000, 0)
	n := 0
	b.now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }
	for range historySize + 10 {
		b.Publish(imageEvent(events.ActionPull, "busybox:latest", "busybox"))
	}
	past, sub := b.Subscribe(Filter{}, base.Add(5*time.Second))
	sub.Close()
	// The ring keeps the last historySize events: times 11..266.
	if len(past) != historySize {
		t.Fatalf("replayed %d events, want %d", len(past), historySize)
	}
	for i := 1; i < len(past); i++ {
		if past[i].TimeNano <= past[i-1].TimeNano {
			t.Fatalf("history out of order at %d", i)
		}
	}
	past, sub = b.Subscribe(Filter{}, base.Add(260*time.Second))
	sub.Close()
	if len(past) != historySize+10-259 {
		t.Errorf("since=260s replayed %d events, want %d", len(past), historySize+10-259)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	b := NewBus()
	_, sub := b.Subscribe(Filter{}, time.Time{})
	defer sub.Close()
	done := make(chan struct{})
	go func() {
		for range subscriberBuffer + 5 {
			b.Publish(imageEvent(events.ActionPull, "x", "x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if sub.Dropped() != 5 {
		t.Errorf("Dropped = %d, want 5", sub.Dropped())
	}
}

func TestFilterMatch(t *testing.T) {
	tag := imageEvent(events.ActionTag, "sha256:0123456789abcdef0123", "127.0.0.1:5000/foo:v1")
	tag.Scope = "local"
	tag.Actor.Attributes["maintainer"] = "me"
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{"type": {"image"}}, true},
		{Filter{"type": {"container"}}, false},
		{Filter{"type": {"container", "image"}}, true},
		{Filter{"event": {"pull", "tag"}}, true},
		{Filter{"event": {"untag"}}, false},
		{Filter{"image": {"127.0.0.1:5000/foo:v1"}}, true},
		{Filter{"image": {"127.0.0.1:5000/foo"}}, true},
		{Filter{"image": {"0123456789ab"}}, true},
		{Filter{"image": {"0123"}}, false},
		{Filter{"image": {"sha256:0123456789abcdef0123"}}, true},
		{Filter{"image": {"bar"}}, false},
		{Filter{"container": {"foo"}}, false},
		{Filter{"label": {"maintainer"}}, true},
		{Filter{"label": {"maintainer=me"}}, true},
		{Filter{"label": {"maintainer=you"}}, false},
		{Filter{"label": {"maintainer", "other"}}, false},
		{Filter{"scope": {"swarm"}}, false},
		{Filter{"type": {"image"}, "event": {"pull"}}, false},
	} {
		if got := c.f.Match(tag); got != c.want {
			t.Errorf("%v.Match = %v, want %v", c.f, got, c.want)
		}
	}
	exec := events.Message{Type: events.ContainerEventType, Action: "exec_start: sh -c true"}
	if !(Filter{"event": {"exec_start"}}).Match(exec) {
		t.Error("event=exec_start does not match an exec_start event")
	}
}

func TestFilterValidate(t *testing.T) {
	if err := (Filter{"type": {"image"}, "label": {"a"}}).Validate(); err != nil {
		t.Errorf("valid filter refused: %v", err)
	}
	if err := (Filter{"colour": {"blue"}}).Validate(); err == nil || err.Error() != "invalid filter 'colour'" {
		t.Errorf("bad key: err = %v", err)
	}
	if err := (Filter{"scope": {"moon"}}).Validate(); err == nil {
		t.Error("bad scope accepted")
	}
}
