// Package events is berthd's event bus: the daemon's components publish
// what happened (an image pulled, tagged, deleted...) as Docker Engine API
// event messages, and every GET /events stream subscribes to it.
//
// Invariants: a publisher never blocks on a slow subscriber (a subscriber
// whose buffer is full loses the event and is told so through Dropped); a
// bounded ring of recent events answers "since" queries, as dockerd keeps
// its last 256 events. Messages are the wire type of
// github.com/moby/moby/api/types/events, so no conversion sits between the
// bus and the HTTP stream.
//
// Imported by the API server and the components that publish; it imports
// nothing of berth.
package events
