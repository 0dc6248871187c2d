package client

import "fmt"

// EventKind says what happened in an Event.
type EventKind int

// The events a Transport reports while it collects proxies. Their String
// forms are the messages the reference client shows in Tor's log.
const (
	// EventOfferCreated: an SDP offer is ready and goes to the broker.
	EventOfferCreated EventKind = iota + 1
	// EventRendezvousSucceeded: the broker returned a proxy's answer.
	EventRendezvousSucceeded
	// EventRendezvousFailed: the broker exchange failed (Err says why).
	EventRendezvousFailed
	// EventConnected: a data channel to a proxy is open.
	EventConnected
	// EventConnectionFailed: a proxy could not be reached (Err says why);
	// another will be tried.
	EventConnectionFailed
	// EventProxySwitched: the session moved to another proxy.
	EventProxySwitched
)

// Event is a notable step in collecting proxies, for status reporting.
type Event struct {
	Kind EventKind
	Err  error // set for the failure kinds
}

// String returns a one-line description. Errors may contain addresses;
// scrub before logging where that matters.
func (e Event) String() string {
	switch e.Kind {
	case EventOfferCreated:
		return "offer created"
	case EventRendezvousSucceeded:
		return "broker rendezvous peer received"
	case EventRendezvousFailed:
		return fmt.Sprintf("broker rendezvous failed: %v", e.Err)
	case EventConnected:
		return "connected"
	case EventConnectionFailed:
		return fmt.Sprintf("trying a new proxy: %v", e.Err)
	case EventProxySwitched:
		return "switched to another proxy"
	}
	return fmt.Sprintf("event %d", int(e.Kind))
}
