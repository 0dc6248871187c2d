package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
)

// ErrPeerFailed reports a peer connection that failed, closed or lost its
// peer before its data channel opened. PeerFactory implementations return
// it (wrapped or not) from Accept and WaitOpen.
var ErrPeerFailed = errors.New("peer connection failed")

// ErrNoRelayDialer reports a platform without a default RelayDialer
// (js/wasm).
var ErrNoRelayDialer = errors.New("proxy: no RelayDialer on this platform")

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
	// a byte stream. Closing the returned conn closes the peer; a peer that
	// loses its client (ICE disconnected, failed or closed) ends the conn,
	// so that a dead client frees its slot in seconds.
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

// ConnInfo describes one client connection.
type ConnInfo struct {
	// ClientAddr is the client's address from its offer, if it had one.
	ClientAddr netip.Addr
	// FromClient and ToClient count the bytes relayed in each direction
	// (zero when the connection starts).
	FromClient, ToClient int64
	// Duration is how long the relay ran (zero when it starts).
	Duration time.Duration
}

// Observer is told what the proxy does, for metrics and for a user
// interface. Calls may come from several goroutines at once and must not
// block. Embed NopObserver to implement only some of the events.
type Observer interface {
	// PollSent reports a poll going out to the broker.
	PollSent()
	// ConnectionStarted reports a client whose relay just started: its
	// data channel is open and the relay's WebSocket connected.
	ConnectionStarted(ConnInfo)
	// BytesRelayed reports bytes relayed for a running connection, as they
	// flow (one call per read, so a long connection is seen while it
	// lasts).
	BytesRelayed(toClient, fromClient int)
	// ConnectionEnded reports a relayed connection that has finished, with
	// its totals. It follows ConnectionStarted.
	ConnectionEnded(ConnInfo)
	// ConnectionTimedOut reports a client whose data channel never opened.
	ConnectionTimedOut()
	// NATTypeChanged reports the proxy's current NAT type.
	NATTypeChanged(natType string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) PollSent()                  {}
func (NopObserver) ConnectionStarted(ConnInfo) {}
func (NopObserver) BytesRelayed(int, int)      {}
func (NopObserver) ConnectionEnded(ConnInfo)   {}
func (NopObserver) ConnectionTimedOut()        {}
func (NopObserver) NATTypeChanged(string)      {}

// Poster sends one HTTP POST and returns the body of its reply. It is the
// platform edge for HTTP: net/http natively (HTTPPoster), the browser's
// fetch in proxy-wasm, which thereby links no net/http. An implementation
// returns an error wrapping ErrBrokerStatus for a status other than 200,
// and ErrBrokerBodyTooBig for a body over MaxReplyBody bytes.
type Poster interface {
	Post(ctx context.Context, url string, body []byte) ([]byte, error)
}

// PollResult is the outcome of one poll.
type PollResult struct {
	// Reply is the broker's reply; nil when the poll failed, except with
	// ErrRelayPatternRejected, which comes with the reply that said so.
	Reply *messages.ProxyPollResponse
	// Err is why the poll failed, nil for a valid reply.
	Err error
}

// PollPolicy decides how the proxy polls: when, while serving how many
// clients, and with what NAT type. The core does the polling; the policy
// only answers and is told the outcomes. NewStandalonePolicy is Tor's
// standalone proxy's; the browser proxy has Tor's browser policy. Calls
// come from several goroutines and must not block.
type PollPolicy interface {
	// Delay is how long until the next poll may go out; zero or less is
	// now. The core asks again when the wait is over, when a client ends,
	// and on Proxy.PollNow.
	Delay(now time.Time) time.Duration
	// Capacity is how many clients are served at once when the proxy
	// reports NAT type nat; 0 is unlimited. The core does not poll while
	// it is reached.
	Capacity(nat string) int
	// NAT is the NAT type to report, given the one measured.
	NAT(measured string) string
	// Polled is told the outcome of a poll, when it went out (now is when
	// it ended). Reading the reply's NextPoll is the policy's job.
	Polled(now time.Time, r PollResult)
	// ClientConnected is told whether a matched client's data channel
	// opened; clientNAT is the client's NAT type from the match.
	ClientConnected(clientNAT string, ok bool)
	// RelayDialed is told the outcome of dialling a client's relay.
	RelayDialed(err error)
}
