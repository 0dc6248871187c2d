// Package ratelimit limits requests per source address with a token bucket
// per source (golang.org/x/time/rate). IPv6 sources are grouped by prefix,
// because one host commonly holds a whole /64. The table of sources has a
// fixed bound: once it is full, and sweeping idle sources frees nothing,
// new sources share a single overflow bucket, so an attacker with many
// addresses cannot grow the table or push out sources already in it.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for Config.
const (
	DefaultMaxSources = 100000
	DefaultIPv6Prefix = 64
)

// Config configures a Limiter.
type Config struct {
	// Rate is the sustained number of requests per second from one source;
	// zero or less disables limiting.
	Rate float64
	// Burst is how many requests a source may make at once; at least 1.
	Burst int
	// MaxSources bounds the sources tracked; 0 means DefaultMaxSources.
	MaxSources int
	// IPv6Prefix is the prefix length that IPv6 sources are grouped by; 0
	// means DefaultIPv6Prefix.
	IPv6Prefix int
	// OnOverflow, if set, is called (at most once a minute) when a new
	// source had to share the overflow bucket.
	OnOverflow func(tracked int)
}

// Limiter decides whether a source may make a request now. A nil *Limiter
// allows everything.
type Limiter struct {
	cfg   Config
	limit rate.Limit

	mu           sync.Mutex
	sources      map[netip.Addr]*rate.Limiter
	overflow     *rate.Limiter
	lastSweep    time.Time
	lastOverflow time.Time
}

// sweepEvery is how often idle sources are dropped, and the least time
// between two sweeps forced by a full table.
const sweepEvery = time.Minute

// New returns a Limiter, or nil when cfg.Rate disables limiting.
func New(cfg Config) *Limiter {
	if cfg.Rate <= 0 {
		return nil
	}
	cfg.Burst = max(cfg.Burst, 1)
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.IPv6Prefix <= 0 || cfg.IPv6Prefix > 128 {
		cfg.IPv6Prefix = DefaultIPv6Prefix
	}
	l := &Limiter{
		cfg:     cfg,
		limit:   rate.Limit(cfg.Rate),
		sources: make(map[netip.Addr]*rate.Limiter),
	}
	// The overflow bucket serves many sources at once; giving it the burst
	// of a few keeps new legitimate sources going during a flood without
	// letting the flood through.
	l.overflow = rate.NewLimiter(l.limit*4, cfg.Burst*4)
	return l
}

// key groups addr with the other addresses of its source.
func (l *Limiter) key(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(l.cfg.IPv6Prefix); err == nil {
			return p.Addr()
		}
	}
	return addr
}

// Allow reports whether addr may make a request at now. When it may not,
// retryAfter is how long until it may.
func (l *Limiter) Allow(addr netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	k := l.key(addr)
	l.mu.Lock()
	lim := l.sources[k]
	if lim == nil {
		lim = l.newSourceLocked(k, now)
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// newSourceLocked adds a bucket for k, or returns the overflow bucket when
// the table is full.
func (l *Limiter) newSourceLocked(k netip.Addr, now time.Time) *rate.Limiter {
	if now.Sub(l.lastSweep) >= sweepEvery || (len(l.sources) >= l.cfg.MaxSources && now.Sub(l.lastSweep) >= time.Second) {
		l.sweepLocked(now)
	}
	if len(l.sources) >= l.cfg.MaxSources {
		if l.cfg.OnOverflow != nil && now.Sub(l.lastOverflow) >= time.Minute {
			l.lastOverflow = now
			l.cfg.OnOverflow(len(l.sources))
		}
		return l.overflow
	}
	lim := rate.NewLimiter(l.limit, l.cfg.Burst)
	l.sources[k] = lim
	return lim
}

// sweepLocked drops the sources whose bucket has refilled: forgetting them
// changes nothing, since a new bucket starts full.
func (l *Limiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	full := float64(l.cfg.Burst)
	for k, lim := range l.sources {
		if lim.TokensAt(now) >= full {
			delete(l.sources, k)
		}
	}
}

// Sources returns the number of sources tracked.
func (l *Limiter) Sources() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}
