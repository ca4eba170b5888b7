package events

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

const (
	// historySize is how many past events a "since" query can replay.
	historySize = 256
	// subscriberBuffer is how many events a subscriber may lag behind
	// before it loses some.
	subscriberBuffer = 1024
)

// Bus fans events out to subscribers. The zero value is not usable; call
// NewBus.
type Bus struct {
	mu      sync.Mutex
	history []events.Message // ring, oldest first once full
	next    int              // ring write position once full
	subs    map[*Subscription]struct{}
	now     func() time.Time
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}, now: time.Now}
}

// Subscription is one listener's view of the bus.
type Subscription struct {
	bus     *Bus
	filter  Filter
	c       chan events.Message
	mu      sync.Mutex
	dropped int
	closed  bool
}

// C delivers the events that match the subscription's filter, in order.
// It is closed by Close.
func (s *Subscription) C() <-chan events.Message { return s.c }

// Dropped returns how many matching events were lost because the
// subscriber did not keep up.
func (s *Subscription) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close detaches the subscription and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.c)
	}
	s.mu.Unlock()
}

// Publish stamps m with the current time when it has none, keeps it in the
// history and hands it to every matching subscriber without waiting.
func (b *Bus) Publish(m events.Message) {
	if m.TimeNano == 0 {
		t := b.now()
		m.Time, m.TimeNano = t.Unix(), t.UnixNano()
	}
	if m.Scope == "" {
		m.Scope = "local"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.history) < historySize {
		b.history = append(b.history, m)
	} else {
		b.history[b.next] = m
		b.next = (b.next + 1) % historySize
	}
	for s := range b.subs {
		if !s.filter.Match(m) {
			continue
		}
		s.mu.Lock()
		if !s.closed {
			select {
			case s.c <- m:
			default:
				s.dropped++
			}
		}
		s.mu.Unlock()
	}
}

// Subscribe returns the past events at or after since that match f (none
// when since is zero) and a subscription to the events published from now
// on. Both are taken under one lock, so no event is missed or seen twice.
func (b *Bus) Subscribe(f Filter, since time.Time) ([]events.Message, *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		n := len(b.history)
		for i := range n {
			m := b.history[(b.next+i)%n]
			if m.TimeNano >= since.UnixNano() && f.Match(m) {
				past = append(past, m)
			}
		}
	}
	s := &Subscription{bus: b, filter: f, c: make(chan events.Message, subscriberBuffer)}
	b.subs[s] = struct{}{}
	return past, s
}

// Listeners returns the number of live subscriptions (docker info's
// NEventsListener).
func (b *Bus) Listeners() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
