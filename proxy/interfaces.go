package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// ErrPeerFailed reports a peer connection that failed, closed or lost its
// peer before its data channel opened. PeerFactory implementations return
// it (wrapped or not) from Accept and WaitOpen.
var ErrPeerFailed = errors.New("peer connection failed")

// ErrNoPeerFactory reports a Config without a PeerFactory.
var ErrNoPeerFactory = errors.New("proxy: no PeerFactory (use proxy/pionpeer natively)")

// PeerFactory creates WebRTC peer connections. It is the platform edge for
// WebRTC: proxy/pionpeer (pion/webrtc) natively, the browser's
// RTCPeerConnection in proxy-wasm. The core itself links no WebRTC stack.
//
// SDP values are plain SDP text (not the JSON wrapping of the broker
// messages).
type PeerFactory interface {
	// NewAnswerer creates a peer for a client's offer and gathers its ICE
	// candidates. It returns when gathering completes or when ctx is done,
	// whichever comes first; in the second case the answer holds the
	// candidates found so far. ctx bounds only this call, not the peer.
	NewAnswerer(ctx context.Context, offer string) (Answerer, error)
	// NewOfferer creates a peer with one data channel called label and
	// gathers its candidates, like NewAnswerer. The NAT probe uses it.
	NewOfferer(ctx context.Context, label string) (Offerer, error)
}

// Answerer is a peer that answered a client's offer.
type Answerer interface {
	// Answer is the local session description (SDP text).
	Answer() string
	// Accept waits until the client's data channel opens and returns it as
	// a byte stream. Closing the returned conn closes the peer.
	Accept(ctx context.Context) (net.Conn, error)
	// Close releases the peer.
	Close() error
}

// Offerer is a peer that made an offer (for the NAT probe).
type Offerer interface {
	// Offer is the local session description (SDP text).
	Offer() string
	// SetAnswer applies the remote answer (SDP text).
	SetAnswer(answer string) error
	// WaitOpen returns nil once the data channel is open, or ctx's error.
	WaitOpen(ctx context.Context) error
	// Close releases the peer.
	Close() error
}

// RelayDialer opens a WebSocket to a relay. It is the platform edge for
// WebSockets.
type RelayDialer interface {
	// DialRelay connects to u. When checkAddr is not nil, the dialer must
	// call it on every IP address it is about to connect to (after name
	// resolution) and refuse the connection if it returns an error, so
	// that the address vetted is the address used. Dialers that cannot see
	// addresses (a browser) may ignore it; IP literals are vetted before
	// DialRelay is called in any case.
	DialRelay(ctx context.Context, u *url.URL, checkAddr func(netip.Addr) error) (net.Conn, error)
}

// Store keeps small settings across restarts: a file natively, local
// storage in a browser.
type Store interface {
	Get(key string) (value string, ok bool)
	Set(key, value string) error
}

// Store keys used by the proxy.
const (
	StoreKeyNATType = "nat-type"
)

// MemStore is a Store in memory.
type MemStore struct {
	mu sync.Mutex
	m  map[string]string
}

// Get implements Store.
func (s *MemStore) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Set implements Store.
func (s *MemStore) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]string)
	}
	s.m[key] = value
	return nil
}

// ConnInfo describes one finished client connection.
type ConnInfo struct {
	// ClientAddr is the client's address from its offer, if it had one.
	ClientAddr netip.Addr
	// FromClient and ToClient count the bytes relayed in each direction.
	FromClient, ToClient int64
	// Duration is how long the relay ran.
	Duration time.Duration
}

// Observer is told what the proxy does, for metrics. Calls may come from
// several goroutines at once and must not block.
type Observer interface {
	// ConnectionEnded reports a relayed connection that has finished.
	ConnectionEnded(ConnInfo)
	// ConnectionTimedOut reports a client whose data channel never opened.
	ConnectionTimedOut()
	// NATTypeChanged reports the proxy's current NAT type.
	NATTypeChanged(natType string)
}

type nopObserver struct{}

func (nopObserver) ConnectionEnded(ConnInfo) {}
func (nopObserver) ConnectionTimedOut()      {}
func (nopObserver) NATTypeChanged(string)    {}
