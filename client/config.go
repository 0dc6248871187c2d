package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/client/rendezvous"
	"github.com/snowfall-pt/snowfall/client/utlsrt"
	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
)

// Defaults (PROTOCOL.md §5.4).
const (
	// DefaultConnectTimeout bounds how long Dial waits for its first proxy.
	DefaultConnectTimeout = 90 * time.Second
	// DefaultRendezvousTimeout bounds one exchange with the broker, body
	// included (the response headers alone are bounded by 15 s).
	DefaultRendezvousTimeout = 30 * time.Second
	// ReconnectTimeout is the period of the loop that collects proxies.
	ReconnectTimeout = 10 * time.Second
)

// ErrBadConfig marks configuration and bridge-line argument errors.
var ErrBadConfig = errors.New("invalid configuration")

// Config says how a Transport reaches the broker and the proxies. The zero
// value of each optional field selects the reference client's behaviour.
type Config struct {
	// BrokerURL is the broker's URL, e.g. "https://snowflake-broker.torproject.net/".
	BrokerURL string
	// Fronts are domain-fronting hosts (host or host:port). When set, each
	// broker request connects (and sends SNI) to one of them chosen at
	// random, with the broker's host in the HTTP Host header.
	Fronts []string
	// AMPCacheURL selects the AMP cache rendezvous through this cache
	// (e.g. "https://cdn.ampproject.org/").
	AMPCacheURL string
	// ICEServers are STUN URLs ("stun:host:port"). When more than two are
	// given, a random half is used. Other schemes are ignored.
	ICEServers []string
	// MaxPeers is how many proxies a session keeps at once (default 1).
	MaxPeers int
	// BridgeFingerprint names the bridge the broker should have proxies
	// relay to (hex); empty means the default Snowflake bridge.
	BridgeFingerprint string
	// UTLSImitate names the browser ClientHello the broker TLS imitates
	// (see utlsrt.Names); empty means the captured Chromium profile and
	// "none" Go's own TLS.
	UTLSImitate string
	// UTLSRemoveSNI leaves SNI out of the uTLS ClientHello.
	UTLSRemoveSNI bool
	// KeepLocalAddresses keeps private and loopback host candidates in
	// offers.
	KeepLocalAddresses bool
	// ProxyURL, when set, is a socks5:// proxy for all traffic: TCP to the
	// broker and UDP for WebRTC and NAT discovery.
	ProxyURL *url.URL

	// Logger receives the library's logs; nil discards them.
	Logger *slog.Logger
	// OnEvent, when set, is called (from any goroutine) for each Event.
	OnEvent func(Event)

	// ConnectTimeout overrides DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// RendezvousTimeout overrides DefaultRendezvousTimeout.
	RendezvousTimeout time.Duration
	// DataChannelTimeout, StaleTimeout override the WebRTC timeouts of
	// package webrtcpeer.
	DataChannelTimeout, StaleTimeout time.Duration

	// RootCAs verifies the broker's certificate; nil means the system
	// roots (on Linux, SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	RootCAs *x509.CertPool
	// DialContext, when set, opens the TCP connections to the broker.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Rendezvous, when set, replaces the method built from BrokerURL,
	// Fronts and AMPCacheURL.
	Rendezvous rendezvous.Method
	// Peers, when set, replaces WebRTC proxies (and the broker) entirely.
	Peers PeerSource
	// NAT, when set, replaces background NAT discovery.
	NAT NATSource
	// IncludeLoopbackCandidates gathers loopback ICE candidates. Only for
	// tests that run everything on one host.
	IncludeLoopbackCandidates bool
}

// Clone returns a copy of c that shares no slices with it.
func (c Config) Clone() Config {
	c.Fronts = append([]string(nil), c.Fronts...)
	c.ICEServers = append([]string(nil), c.ICEServers...)
	if c.ProxyURL != nil {
		u := *c.ProxyURL
		c.ProxyURL = &u
	}
	return c
}

// WithArgs returns a copy of c overridden by the per-connection arguments
// of a Tor bridge line (carried in the SOCKS username and password): url,
// front, fronts, ampcache, ice, max, fingerprint, utls-imitate, utls-nosni.
// Unknown keys are ignored. c itself is never modified, so arguments of one
// connection cannot leak into the next.
func (c Config) WithArgs(args map[string][]string) (Config, error) {
	out := c.Clone()
	get := func(k string) (string, bool) {
		v, ok := args[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if v, ok := get("url"); ok {
		if _, err := rendezvous.ParseBrokerURL(v); err != nil {
			return c, fmt.Errorf("%w: url: %w", ErrBadConfig, err)
		}
		out.BrokerURL = v
	}
	if v, ok := get("ampcache"); ok {
		if v != "" {
			if _, err := rendezvous.ParseCacheURL(v); err != nil {
				return c, fmt.Errorf("%w: ampcache: %w", ErrBadConfig, err)
			}
		}
		out.AMPCacheURL = v
	}
	if v, ok := get("front"); ok {
		out.Fronts = SplitList(v)
	}
	if v, ok := get("fronts"); ok && strings.TrimSpace(v) != "" {
		out.Fronts = SplitList(v)
	}
	if v, ok := get("ice"); ok {
		out.ICEServers = SplitList(v)
	}
	if v, ok := get("max"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return c, fmt.Errorf("%w: max: %q is not an integer", ErrBadConfig, v)
		}
		out.MaxPeers = n
	}
	if v, ok := get("fingerprint"); ok {
		fp, err := bridgefingerprint.Parse(strings.TrimSpace(v))
		if err != nil {
			return c, fmt.Errorf("%w: fingerprint %q: %w", ErrBadConfig, v, err)
		}
		out.BridgeFingerprint = fp.String()
	}
	if v, ok := get("utls-imitate"); ok {
		if v != "" {
			if _, err := utlsrt.ParseClientHelloID(v); err != nil {
				return c, fmt.Errorf("%w: utls-imitate: %w", ErrBadConfig, err)
			}
		}
		out.UTLSImitate = v
	}
	if v, ok := get("utls-nosni"); ok {
		b, err := parseBool(v)
		if err != nil {
			return c, fmt.Errorf("%w: utls-nosni: %w", ErrBadConfig, err)
		}
		out.UTLSRemoveSNI = b
	}
	return out, nil
}

// parseBool accepts true/yes/1 and false/no/0, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true/yes or false/no", s)
}

// SplitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// validate checks the fields NewTransport needs.
func (c *Config) validate() error {
	if c.Peers == nil && c.Rendezvous == nil {
		if c.BrokerURL == "" {
			return fmt.Errorf("%w: no broker URL", ErrBadConfig)
		}
		if _, err := rendezvous.ParseBrokerURL(c.BrokerURL); err != nil {
			return fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		if c.AMPCacheURL != "" {
			if _, err := rendezvous.ParseCacheURL(c.AMPCacheURL); err != nil {
				return fmt.Errorf("%w: %w", ErrBadConfig, err)
			}
		}
		if c.UTLSImitate != "" {
			if _, err := utlsrt.ParseClientHelloID(c.UTLSImitate); err != nil {
				return fmt.Errorf("%w: %w", ErrBadConfig, err)
			}
		}
	}
	if c.BridgeFingerprint != "" {
		if _, err := bridgefingerprint.Parse(c.BridgeFingerprint); err != nil {
			return fmt.Errorf("%w: fingerprint: %w", ErrBadConfig, err)
		}
	}
	if c.ProxyURL != nil && c.ProxyURL.Scheme != "socks5" {
		return fmt.Errorf("%w: proxy scheme %q is not supported (only socks5)", ErrBadConfig, c.ProxyURL.Scheme)
	}
	return nil
}

// SelectICEServers turns ICE URLs into pion ICE servers the way the
// reference client does: only stun: and stuns: URLs are kept (others are
// reported through warn, which may be nil), the list is shuffled, and when
// more than two remain only the first half (rounded up) is used.
func SelectICEServers(urls []string, warn func(url string, err error)) []webrtc.ICEServer {
	var servers []webrtc.ICEServer
	for _, raw := range urls {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := stun.ParseURI(raw)
		if err == nil && u.Scheme != stun.SchemeTypeSTUN && u.Scheme != stun.SchemeTypeSTUNS {
			err = errors.New("only stun: and stuns: servers are supported")
		}
		if err != nil {
			if warn != nil {
				warn(raw, err)
			}
			continue
		}
		servers = append(servers, webrtc.ICEServer{URLs: []string{u.String()}})
	}
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	if len(servers) > 2 {
		servers = servers[:(len(servers)+1)/2]
	}
	return servers
}
