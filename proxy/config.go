package proxy

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults, as in Tor's snowflake-proxy so that an operator can swap the
// binary without changing its command line.
const (
	DefaultBrokerURL           = "https://snowflake-broker.torproject.net/"
	DefaultRelayURL            = "wss://snowflake.torproject.net/"
	DefaultRelayPattern        = "snowflake.torproject.net$"
	DefaultSTUNURL             = "stun:stun.l.google.com:19302"
	DefaultNATProbeURL         = "https://snowflake-broker.torproject.net:8443/probe"
	DefaultProxyType           = "standalone"
	DefaultPollInterval        = 5 * time.Second
	DefaultNATRetestInterval   = 24 * time.Hour
	DefaultSummaryInterval     = time.Hour
	DefaultDataChannelTimeout  = 20 * time.Second
	DefaultInactivityTimeout   = 30 * time.Second
	DefaultGatherTimeout       = 3750 * time.Millisecond
	DefaultBrokerHeaderTimeout = 30 * time.Second
)

// Bounds on the delay between polls. A broker's NextPoll hint outside them
// is clamped, so a broker can neither make volunteers hammer it nor put them
// to sleep for hours.
const (
	MinPollInterval = 2 * time.Second
	MaxPollInterval = 10 * time.Minute
)

// Config is everything a Proxy needs. The zero value of every field means
// its default; New fills the defaults in.
type Config struct {
	// BrokerURL is the broker's base URL; polls go to "proxy" and answers
	// to "answer" resolved against it.
	BrokerURL string
	// RelayURL is the WebSocket address of the bridge used when the broker
	// names none. It is the operator's own choice, so RelayPolicy is not
	// applied to it.
	RelayURL string
	// Policy vets every relay URL that a broker supplies.
	Policy RelayPolicy
	// STUNURLs are the ICE servers for WebRTC (stun: URLs).
	STUNURLs []string
	// Capacity is the number of clients served at once; 0 is unlimited.
	// While it is reached the proxy does not poll. It configures the
	// default PollPolicy only.
	Capacity int
	// PollInterval is the delay between polls when the broker gives no
	// NextPoll hint. It is kept within [MinPollInterval, MaxPollInterval].
	// It configures the default PollPolicy only.
	PollInterval time.Duration
	// ProxyType is reported in polls ("standalone", "webext", "badge",
	// "iptproxy"...).
	ProxyType string
	// KeepLocalAddresses keeps local-network candidates in answers, and
	// lets the proxy try the client's candidates that are not public
	// (otherwise dropped from its offer, of every candidate type).
	KeepLocalAddresses bool
	// NATProbeURL is the NAT probe service (PROTOCOL.md §9).
	NATProbeURL string
	// NATRetestInterval is how often the NAT type is measured again; a
	// negative value disables retests (the type is still measured once at
	// start unless ForceNATType is set). Zero means the default.
	NATRetestInterval time.Duration
	// ForceNATType skips the probe and reports this type (e.g.
	// "unrestricted" for a host with a public address and no firewall).
	ForceNATType string
	// SummaryInterval is how often the traffic summary is logged; negative
	// disables it. Zero means the default.
	SummaryInterval time.Duration
	// BandwidthLimit caps the bytes per second relayed through this proxy,
	// both directions and all clients together; 0 is unlimited.
	BandwidthLimit int64

	// DataChannelTimeout bounds the wait for a client's data channel after
	// the answer was sent.
	DataChannelTimeout time.Duration
	// InactivityTimeout closes a connection when the relay sends nothing for
	// this long.
	InactivityTimeout time.Duration
	// GatherTimeout bounds ICE gathering before an answer is sent with the
	// candidates found so far (¾ of the broker's 5 s client deadline).
	GatherTimeout time.Duration

	// Logger receives the log; nil discards it. Addresses should be scrubbed
	// by its handler (internal/safelog) unless unsafe logging is wanted.
	Logger *slog.Logger
	// Poster talks HTTP to the broker and the NAT probe; nil is
	// HTTPPoster(nil) natively (a 30 s response-header timeout) and an
	// error in a browser, which brings its own.
	Poster Poster
	// PollPolicy decides when to poll, with what capacity and NAT type;
	// nil is NewStandalonePolicy(Capacity, PollInterval).
	PollPolicy PollPolicy
	// PeerFactory makes WebRTC peers. It is required: the core links no
	// WebRTC stack of its own (proxy/pionpeer natively, the browser's
	// RTCPeerConnection in proxy-wasm).
	PeerFactory PeerFactory
	// RelayDialer opens WebSockets to relays; nil uses the platform default
	// (on native platforms it checks each dialled address with the policy).
	RelayDialer RelayDialer
	// Store keeps settings across restarts (the last NAT type); nil keeps
	// them in memory.
	Store Store
	// Observer is told about connections and traffic (e.g. for Prometheus);
	// nil for none.
	Observer Observer
}

// withDefaults returns c with zero fields set to their defaults, or an error
// for settings that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.BrokerURL == "" {
		c.BrokerURL = DefaultBrokerURL
	}
	if c.RelayURL == "" {
		c.RelayURL = DefaultRelayURL
	}
	if c.Policy.Pattern == "" {
		c.Policy.Pattern = DefaultRelayPattern
	}
	if c.STUNURLs == nil {
		c.STUNURLs = []string{DefaultSTUNURL}
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	c.PollInterval = clampDuration(c.PollInterval, MinPollInterval, MaxPollInterval)
	if c.ProxyType == "" {
		c.ProxyType = DefaultProxyType
	}
	if c.NATProbeURL == "" {
		c.NATProbeURL = DefaultNATProbeURL
	}
	if c.NATRetestInterval == 0 {
		c.NATRetestInterval = DefaultNATRetestInterval
	}
	if c.SummaryInterval == 0 {
		c.SummaryInterval = DefaultSummaryInterval
	}
	if c.DataChannelTimeout <= 0 {
		c.DataChannelTimeout = DefaultDataChannelTimeout
	}
	if c.InactivityTimeout <= 0 {
		c.InactivityTimeout = DefaultInactivityTimeout
	}
	if c.GatherTimeout <= 0 {
		c.GatherTimeout = DefaultGatherTimeout
	}
	if c.Capacity < 0 {
		return c, fmt.Errorf("capacity %d: must be 0 (unlimited) or more", c.Capacity)
	}
	if c.BandwidthLimit < 0 {
		return c, fmt.Errorf("bandwidth limit %d: must be 0 (unlimited) or more", c.BandwidthLimit)
	}
	if err := checkHTTPURL(c.BrokerURL); err != nil {
		return c, fmt.Errorf("broker URL: %w", err)
	}
	if err := checkHTTPURL(c.NATProbeURL); err != nil {
		return c, fmt.Errorf("NAT probe URL: %w", err)
	}
	u, err := url.Parse(c.RelayURL)
	if err != nil {
		return c, fmt.Errorf("relay URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
		return c, fmt.Errorf("relay URL %q: want ws:// or wss://", c.RelayURL)
	}
	for _, s := range c.STUNURLs {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
			return c, fmt.Errorf("STUN URL %q: want stun:host:port", s)
		}
	}
	if c.ForceNATType != "" {
		switch c.ForceNATType {
		case "unknown", "restricted", "unrestricted":
		default:
			return c, fmt.Errorf("forced NAT type %q: want unknown, restricted or unrestricted", c.ForceNATType)
		}
	}
	return c, nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q: want http:// or https://", s)
	}
	return nil
}

func clampDuration(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

// ParsePortRange parses an ephemeral port range "min:max" (both non-zero,
// min <= max), the format of Tor's -ephemeral-ports-range.
func ParsePortRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("port range %q: want min:max", s)
	}
	x, err := strconv.ParseUint(a, 10, 16)
	if err != nil || x == 0 {
		return 0, 0, fmt.Errorf("port range %q: bad minimum", s)
	}
	y, err := strconv.ParseUint(b, 10, 16)
	if err != nil || y == 0 {
		return 0, 0, fmt.Errorf("port range %q: bad maximum", s)
	}
	if x > y {
		return 0, 0, fmt.Errorf("port range %q: minimum above maximum", s)
	}
	return uint16(x), uint16(y), nil
}
