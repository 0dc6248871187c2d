// Package broker implements the Snowflake rendezvous broker: it matches the
// WebRTC offers of censored clients with volunteer proxies that long-poll for
// them, and routes the proxies' answers back (PROTOCOL.md §3).
//
// Waiting proxies sit in two min-heaps keyed by their client count, one for
// proxies behind unrestricted NATs and one for the rest, so a match costs
// O(log n). A held proxy poll is a small record with a timer; when the
// broker serves its own listener (Serve), the poll's connection is taken off
// the HTTP server while it waits, so a held poll costs no goroutine and no
// HTTP buffers.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/broker/bridgelist"
	"github.com/snowfall-pt/snowfall/broker/ratelimit"
	"github.com/snowfall-pt/snowfall/common/namematcher"
	"github.com/snowfall-pt/snowfall/internal/geoip"
)

// Defaults for Config.
const (
	DefaultProxyTimeout      = 10 * time.Second
	DefaultClientTimeout     = 10 * time.Second
	DefaultPollInterval      = 20 * time.Second
	DefaultMaxWaitingProxies = 250000
	DefaultMetricsInterval   = 24 * time.Hour

	// RejectedPollInterval is the NextPoll sent with "incorrect relay
	// pattern", as the reference does.
	RejectedPollInterval = time.Hour

	// MaxBodySize caps request bodies, as in the reference.
	MaxBodySize = 100000
)

// Config configures a Broker. The zero value of a field selects its default.
type Config struct {
	// Bridges is the bridge list; nil means bridgelist.Default().
	Bridges *bridgelist.List
	// AllowedRelayPattern is the broker's relay hostname pattern. It is
	// always in force: a proxy's AcceptedRelayPattern must be a superset of
	// it, and every bridge's relay host must match it.
	AllowedRelayPattern string
	// DefaultRelayPattern is presumed for legacy proxies that send no
	// AcceptedRelayPattern; when empty such proxies are rejected.
	DefaultRelayPattern string

	// ProxyTimeout is how long a proxy poll is held waiting for a client.
	ProxyTimeout time.Duration
	// ClientTimeout is how long a matched client waits for the proxy's
	// answer, counted from the match.
	ClientTimeout time.Duration
	// PollIntervalUnrestricted and PollIntervalRestricted are sent as
	// NextPoll to proxies of each pool; negative disables NextPoll.
	PollIntervalUnrestricted time.Duration
	PollIntervalRestricted   time.Duration
	// MaxWaitingProxies bounds the number of held proxy polls; polls beyond
	// it get "no match" at once. Negative means no bound.
	MaxWaitingProxies int

	// TrustForwarded takes the remote address from a forwarding header,
	// as Forwarded configures, for a broker behind trusted reverse proxies
	// or a CDN.
	TrustForwarded bool
	Forwarded      ForwardedConfig

	// MaxSidBytes bounds a proxy's session id; longer ones get 400.
	MaxSidBytes int
	// MaxSDPBytes bounds the JSON text of an offer or an answer.
	MaxSDPBytes int
	// ClientRate and ClientBurst limit /client and /amp/client requests
	// per source (requests per second, burst); ProxyRate and ProxyBurst
	// limit /proxy and /answer. A negative rate disables the limit.
	ClientRate  float64
	ClientBurst int
	ProxyRate   float64
	ProxyBurst  int
	// RateLimitSources bounds the sources each rate limiter tracks
	// (ratelimit.DefaultMaxSources by default); RateLimitIPv6Prefix is the
	// prefix length IPv6 sources are grouped by (default 64).
	RateLimitSources    int
	RateLimitIPv6Prefix int
	// Geoip maps proxy addresses to countries for the metrics; nil counts
	// every address as "??".
	Geoip *geoip.Table

	// MetricsLog receives the periodic text metrics report; nil disables it.
	MetricsLog io.Writer
	// MetricsLogPath is served at /metrics; empty makes /metrics 404.
	MetricsLogPath string
	// MetricsInterval is the report period.
	MetricsInterval time.Duration

	// OnProxyAddr, if set, is called with the remote address of every
	// proxy poll (for the -ip-count-log journal).
	OnProxyAddr func(netip.Addr)

	// Logger receives the broker's logs; nil discards them. Callers
	// scrub addresses (package safelog).
	Logger *slog.Logger
}

// Broker matches clients with proxies. Create one with New; its Handler
// serves every endpoint.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	allowed namematcher.Matcher
	bridges atomic.Pointer[bridgelist.List]
	m       *matcher
	metrics *metrics
	refused *refusals

	clientLimit, proxyLimit *ratelimit.Limiter
	// noSDPChecks turns the SDP checks off, only for the benchmark that
	// measures their cost.
	noSDPChecks bool

	pollUnrestricted atomic.Int64 // NextPoll in ms; 0 = not sent
	pollRestricted   atomic.Int64

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
	closing   atomic.Bool
}

// ErrRelayPattern reports a bridge whose relay host the allowed relay pattern
// does not match.
var ErrRelayPattern = errors.New("bridge relay not allowed by the relay pattern")

// New checks cfg and returns a running Broker. Close stops it.
func New(cfg Config) (*Broker, error) {
	if cfg.Bridges == nil {
		cfg.Bridges = bridgelist.Default()
	}
	if cfg.ProxyTimeout <= 0 {
		cfg.ProxyTimeout = DefaultProxyTimeout
	}
	if cfg.ClientTimeout <= 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	if cfg.PollIntervalUnrestricted == 0 {
		cfg.PollIntervalUnrestricted = DefaultPollInterval
	}
	if cfg.PollIntervalRestricted == 0 {
		cfg.PollIntervalRestricted = DefaultPollInterval
	}
	if cfg.MaxWaitingProxies == 0 {
		cfg.MaxWaitingProxies = DefaultMaxWaitingProxies
	}
	if cfg.MetricsInterval <= 0 {
		cfg.MetricsInterval = DefaultMetricsInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSidBytes <= 0 {
		cfg.MaxSidBytes = DefaultMaxSidBytes
	}
	if cfg.MaxSDPBytes <= 0 {
		cfg.MaxSDPBytes = DefaultMaxSDPBytes
	}
	if cfg.ClientRate == 0 {
		cfg.ClientRate, cfg.ClientBurst = DefaultClientRate, DefaultClientBurst
	}
	if cfg.ProxyRate == 0 {
		cfg.ProxyRate, cfg.ProxyBurst = DefaultProxyRate, DefaultProxyBurst
	}
	if cfg.TrustForwarded {
		if cfg.Forwarded.Header == "" {
			cfg.Forwarded.Header = HeaderXForwardedFor
		}
		h, ok := ParseForwardedHeader(cfg.Forwarded.Header)
		if !ok {
			return nil, fmt.Errorf("broker: forwarding header %q is neither %s nor %s", cfg.Forwarded.Header, HeaderXForwardedFor, HeaderForwarded)
		}
		cfg.Forwarded.Header = h
		if cfg.Forwarded.Hops < 0 {
			return nil, errors.New("broker: negative number of trusted forwarding hops")
		}
	}
	b := &Broker{
		cfg:     cfg,
		log:     cfg.Logger,
		allowed: namematcher.New(cfg.AllowedRelayPattern),
		closed:  make(chan struct{}),
	}
	if err := b.SetBridges(cfg.Bridges); err != nil {
		return nil, err
	}
	b.warnRelayPattern()
	b.clientLimit = b.newLimiter("client", cfg.ClientRate, cfg.ClientBurst)
	b.proxyLimit = b.newLimiter("proxy", cfg.ProxyRate, cfg.ProxyBurst)
	b.SetPollIntervals(cfg.PollIntervalUnrestricted, cfg.PollIntervalRestricted)
	if cfg.DefaultRelayPattern != "" && !namematcher.New(cfg.DefaultRelayPattern).IsSupersetOf(b.allowed) {
		b.log.Warn("the default relay pattern is narrower than the allowed relay pattern: legacy proxies will all be rejected",
			"default", cfg.DefaultRelayPattern, "allowed", cfg.AllowedRelayPattern)
	}
	max := cfg.MaxWaitingProxies
	if max < 0 {
		max = 0
	}
	b.m = newMatcher(max, len(proxyTypes))
	b.metrics = newMetrics(func() [][numNAT]int {
		_, _, byType := b.m.counts()
		return byType
	})
	b.refused = newRefusals(b.metrics.registry, func(endpoint, reason string, n uint64) {
		b.log.Warn("refusing requests", "endpoint", endpoint, "reason", reason, "count", n, "period", refuseLogEvery)
	})
	b.SetGeoip(cfg.Geoip)
	if cfg.MetricsLog != nil {
		b.wg.Add(1)
		go b.logMetrics()
	}
	return b, nil
}

func (b *Broker) newLimiter(endpoint string, r float64, burst int) *ratelimit.Limiter {
	if r < 0 {
		return nil
	}
	return ratelimit.New(ratelimit.Config{
		Rate: r, Burst: burst,
		MaxSources: b.cfg.RateLimitSources, IPv6Prefix: b.cfg.RateLimitIPv6Prefix,
		OnOverflow: func(tracked int) {
			b.log.Warn("rate limiter source table full: new sources share one bucket", "endpoint", endpoint, "tracked", tracked)
		},
	})
}

// ProxyDefaultRelayPatterns are the relay patterns that proxy software sends
// by default (Tor's snowflake-proxy and browser extension, snowfall-proxy).
var ProxyDefaultRelayPatterns = []string{"snowflake.torproject.net$"}

// warnRelayPattern warns when no proxy with a default configuration would
// be accepted: the broker accepts a proxy only if the proxy's pattern is a
// superset of the allowed pattern, and the defaults name Tor's domain.
func (b *Broker) warnRelayPattern() {
	for _, p := range ProxyDefaultRelayPatterns {
		if namematcher.New(p).IsSupersetOf(b.allowed) {
			return
		}
	}
	b.log.Warn("the allowed relay pattern is outside the default pattern of every proxy: proxies in their default configuration will all be rejected (\"incorrect relay pattern\"); only proxies configured with a matching -allowed-relay-hostname-pattern can serve",
		"allowed", b.cfg.AllowedRelayPattern, "proxy-defaults", ProxyDefaultRelayPatterns)
}

// SetBridges replaces the bridge list. It fails, keeping the old list, if a
// bridge's relay host does not match the allowed relay pattern.
func (b *Broker) SetBridges(l *bridgelist.List) error {
	for _, br := range l.Bridges() {
		if !b.allowed.IsMember(br.Host) {
			return fmt.Errorf("%w: %s (%s) against %q", ErrRelayPattern,
				br.WebSocketAddress, br.Fingerprint, b.cfg.AllowedRelayPattern)
		}
	}
	b.bridges.Store(l)
	return nil
}

// SetGeoip replaces the geoip table used for metrics; nil disables it.
func (b *Broker) SetGeoip(t *geoip.Table) { b.metrics.geoip.Store(t) }

// SetPollIntervals changes the NextPoll values sent to proxies of each pool;
// zero or negative stops sending NextPoll for that pool.
func (b *Broker) SetPollIntervals(unrestricted, restricted time.Duration) {
	b.pollUnrestricted.Store(max(0, unrestricted.Milliseconds()))
	b.pollRestricted.Store(max(0, restricted.Milliseconds()))
}

// nextPoll returns the NextPoll milliseconds for a proxy of NAT class nat.
func (b *Broker) nextPoll(nat natClass) int {
	if nat == natUnrestricted {
		return int(b.pollUnrestricted.Load())
	}
	return int(b.pollRestricted.Load())
}

// WriteMetrics writes the text metrics report now and starts a new interval.
func (b *Broker) WriteMetrics(w io.Writer) error {
	return b.metrics.report(w, time.Now(), b.cfg.MetricsInterval)
}

func (b *Broker) logMetrics() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-b.closed:
			return
		case now := <-t.C:
			if err := b.metrics.report(b.cfg.MetricsLog, now, b.cfg.MetricsInterval); err != nil {
				b.log.Error("writing metrics", "err", err)
			}
		}
	}
}

// Waiting returns the number of held proxy polls in the unrestricted and
// restricted pools.
func (b *Broker) Waiting() (unrestricted, restricted int) {
	u, r, _ := b.m.counts()
	return u, r
}

// Close answers every held proxy poll with "no match" and stops the
// broker's background work. Requests that arrive later are still answered.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.closing.Store(true)
		close(b.closed)
		for _, w := range b.m.drain() {
			w.timer.Stop()
			b.deliver(w, nil)
		}
		b.wg.Wait()
	})
	return nil
}
