package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// sourceKey groups peers for per-source limits: an IPv4 address, or the /64
// of an IPv6 address (one subscriber typically holds a whole /64). It
// returns the zero Prefix for an address that cannot be parsed.
func sourceKey(addr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr()
	} else if host, _, err := net.SplitHostPort(addr); err == nil {
		ip, _ = netip.ParseAddr(host)
	}
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return netip.Prefix{}
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	default:
		p, _ := ip.Prefix(64)
		return p
	}
}

// limitLogger logs that a limit was reached, at most once per interval per
// limit, so an attack that hits a limit a million times costs a few lines.
type limitLogger struct {
	logger *slog.Logger
	mu     sync.Mutex
	every  map[string]*rate.Sometimes
}

// limitLogInterval is the least time between two lines about one limit.
const limitLogInterval = 10 * time.Second

func newLimitLogger(l *slog.Logger) *limitLogger {
	return &limitLogger{logger: l, every: make(map[string]*rate.Sometimes)}
}

// reached logs "limit reached" for the named limit with its value.
func (l *limitLogger) reached(name string, limit int, args ...any) {
	l.mu.Lock()
	s := l.every[name]
	if s == nil {
		s = &rate.Sometimes{Interval: limitLogInterval}
		l.every[name] = s
	}
	l.mu.Unlock()
	s.Do(func() {
		l.logger.Warn("limit reached", append([]any{"limit", name, "value", limit}, args...)...)
	})
}

// sessionTable counts the KCP sessions the bridge holds, or is about to
// hold, against a total and a per-source limit. A session is admitted when
// the first WebSocket of a new ClientID has sent its prologue, and charged
// to that WebSocket's source; it is let go when its last WebSocket has gone
// and no KCP session runs for it (or, if none ever started, a short grace
// later: KCP may still be about to accept one from packets already queued).
type sessionTable struct {
	max, perSource int // perSource < 0: unlimited

	mu      sync.Mutex
	byID    map[turbotunnel.ClientID]*sessionEntry
	bySrc   map[netip.Prefix]int
	linger  time.Duration
	total   int
	running int // entries with a KCP session
}

type sessionEntry struct {
	src      netip.Prefix // zero if unknown
	carriers int          // WebSockets open for this ClientID
	live     bool         // a KCP session runs
	gen      uint64       // bumped on every change, to void stale timers
}

// sessionLinger is how long a ClientID stays admitted after its last
// WebSocket closed before a KCP session appeared for it.
const sessionLinger = 5 * time.Second

func newSessionTable(max, perSource int) *sessionTable {
	return &sessionTable{
		max:       max,
		perSource: perSource,
		byID:      make(map[turbotunnel.ClientID]*sessionEntry),
		bySrc:     make(map[netip.Prefix]int),
		linger:    sessionLinger,
	}
}

// Errors of admit: which limit refused.
const (
	admitOK = iota
	admitTotal
	admitSource
)

// admit registers one WebSocket for id from src. It returns admitOK, or
// which limit refused a ClientID the table does not know yet.
func (t *sessionTable) admit(id turbotunnel.ClientID, src netip.Prefix) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.byID[id]; e != nil {
		e.carriers++
		e.gen++
		return admitOK
	}
	if t.total >= t.max {
		return admitTotal
	}
	if src.IsValid() && t.perSource >= 0 && t.bySrc[src] >= t.perSource {
		return admitSource
	}
	t.add(id, &sessionEntry{src: src, carriers: 1})
	return admitOK
}

func (t *sessionTable) add(id turbotunnel.ClientID, e *sessionEntry) {
	t.byID[id] = e
	t.total++
	if e.src.IsValid() {
		t.bySrc[e.src]++
	}
}

// removeLocked forgets id's entry e.
func (t *sessionTable) removeLocked(id turbotunnel.ClientID, e *sessionEntry) {
	delete(t.byID, id)
	t.total--
	if e.src.IsValid() {
		if t.bySrc[e.src]--; t.bySrc[e.src] <= 0 {
			delete(t.bySrc, e.src)
		}
	}
}

// leave unregisters one WebSocket of id.
func (t *sessionTable) leave(id turbotunnel.ClientID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if e == nil {
		return
	}
	e.carriers--
	e.gen++
	if e.carriers > 0 || e.live {
		return
	}
	gen := e.gen
	time.AfterFunc(t.linger, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.byID[id] == e && e.gen == gen {
			t.removeLocked(id, e)
		}
	})
}

// started records that KCP accepted a session for id. It reports false if
// the session must be refused: it arrived for a ClientID no longer
// admitted, and the total limit is reached.
func (t *sessionTable) started(id turbotunnel.ClientID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if e == nil {
		if t.total >= t.max {
			return false
		}
		e = &sessionEntry{}
		t.add(id, e)
	}
	e.live = true
	e.gen++
	t.running++
	return true
}

// ended records that id's KCP session is over.
func (t *sessionTable) ended(id turbotunnel.ClientID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byID[id]
	if e == nil || !e.live {
		return
	}
	e.live = false
	e.gen++
	t.running--
	if e.carriers == 0 {
		t.removeLocked(id, e)
	}
}

// counts returns the admitted ClientIDs and the running KCP sessions.
func (t *sessionTable) counts() (admitted, running int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.running
}
