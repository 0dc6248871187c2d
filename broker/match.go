package broker

import (
	"container/heap"
	"errors"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

// natClass indexes per-NAT-type counters.
type natClass uint8

const (
	natUnknown natClass = iota
	natRestricted
	natUnrestricted
	numNAT
)

var natNames = [numNAT]string{nattype.Unknown, nattype.Restricted, nattype.Unrestricted}

func natClassOf(s string) natClass {
	switch s {
	case nattype.Restricted:
		return natRestricted
	case nattype.Unrestricted:
		return natUnrestricted
	}
	return natUnknown
}

// offer is what a matched proxy poll receives.
type offer struct {
	sdp      string // the client's session-description JSON
	nat      string // the client's NAT type
	relayURL string
}

// waiter states.
const (
	stateWaiting uint8 = iota // in a pool, waiting for a client
	stateMatched              // given an offer; the client waits for the answer
	stateDone                 // expired, replaced, answered or abandoned
)

// waiter is one held proxy poll and, once matched, the session that routes
// the proxy's answer back to the client. It is kept small: one exists per
// waiting proxy.
type waiter struct {
	sid     string
	clients int
	seq     uint64 // arrival order, so that ties are served first come first served
	index   int    // position in its pool's heap, -1 when not queued
	state   uint8
	nat     natClass
	ptype   uint8 // index into proxyTypes
	pool    *pool

	// res receives the poll's outcome once: an offer, or nil when the poll
	// expired or was replaced. Unused when the poll is parked.
	res chan *offer
	// answer receives the proxy's answer once matched; "" means the proxy
	// went away and no answer will come.
	answer chan string
	timer  *time.Timer
	parked *parkedPoll
}

// pool is a min-heap of waiting proxies ordered by their client count, then
// by arrival.
type pool []*waiter

func (p pool) Len() int { return len(p) }
func (p pool) Less(i, j int) bool {
	if p[i].clients != p[j].clients {
		return p[i].clients < p[j].clients
	}
	return p[i].seq < p[j].seq
}
func (p pool) Swap(i, j int) {
	p[i], p[j] = p[j], p[i]
	p[i].index = i
	p[j].index = j
}
func (p *pool) Push(x any) {
	w := x.(*waiter)
	w.index = len(*p)
	*p = append(*p, w)
}
func (p *pool) Pop() any {
	old := *p
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	w.index = -1
	*p = old[:n-1]
	return w
}

var (
	errPoolFull = errors.New("too many waiting proxies")
	errSidBusy  = errors.New("session id is already matched")
)

// matcher holds the two pools and the session map. One mutex guards all of
// it: every operation is a few heap steps and map accesses, so contention is
// low, and a single lock keeps the fallback between pools atomic.
type matcher struct {
	mu           sync.Mutex
	unrestricted pool // proxies reporting unrestricted NAT
	restricted   pool // proxies reporting restricted or unknown NAT
	sids         map[string]*waiter
	seq          uint64
	max          int
	// available counts waiting proxies by type and NAT for /debug and the
	// prometheus gauge.
	available [][numNAT]int
}

func newMatcher(max, ntypes int) *matcher {
	return &matcher{
		sids:      make(map[string]*waiter),
		max:       max,
		available: make([][numNAT]int, ntypes),
	}
}

func (m *matcher) poolFor(nat natClass) *pool {
	if nat == natUnrestricted {
		return &m.unrestricted
	}
	return &m.restricted
}

// enqueue adds w to its pool. A waiting poll with the same Sid is replaced
// (a proxy that lost its previous request polls again with the same Sid);
// the replaced waiter is returned so the caller can finish it. A Sid that
// is matched and awaiting its answer cannot be reused.
//
// On success w's expiry timer is started under the lock, so that whoever
// later takes w out of its pool sees w.timer set.
func (m *matcher) enqueue(w *waiter, timeout time.Duration, expire func()) (replaced *waiter, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.sids[w.sid]; old != nil {
		if old.state != stateWaiting {
			return nil, errSidBusy
		}
		m.removeLocked(old)
		replaced = old
	} else if m.max > 0 && len(m.unrestricted)+len(m.restricted) >= m.max {
		return nil, errPoolFull
	}
	m.seq++
	w.seq = m.seq
	w.state = stateWaiting
	w.pool = m.poolFor(w.nat)
	heap.Push(w.pool, w)
	m.sids[w.sid] = w
	m.available[w.ptype][w.nat]++
	w.timer = time.AfterFunc(timeout, expire)
	return replaced, nil
}

// removeLocked takes a waiting w out of its pool and the session map.
func (m *matcher) removeLocked(w *waiter) {
	heap.Remove(w.pool, w.index)
	m.available[w.ptype][w.nat]--
	if m.sids[w.sid] == w {
		delete(m.sids, w.sid)
	}
	w.state = stateDone
}

// expire removes w if it is still waiting; it reports whether it did, in
// which case the caller owns telling the proxy "no match".
func (m *matcher) expire(w *waiter) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.state != stateWaiting {
		return false
	}
	m.removeLocked(w)
	return true
}

// match pops the proxy that should serve a client with NAT type clientNAT:
// restricted and unknown clients need an unrestricted proxy; unrestricted
// clients prefer a restricted proxy, so that unrestricted proxies stay
// available for the clients that need them, and fall back to an
// unrestricted one. The returned waiter is in stateMatched with its answer
// channel ready; nil means no compatible proxy waits.
func (m *matcher) match(clientNAT natClass) *waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p *pool
	switch {
	case clientNAT != natUnrestricted:
		p = &m.unrestricted
	case len(m.restricted) > 0:
		p = &m.restricted
	default:
		p = &m.unrestricted
	}
	if len(*p) == 0 {
		return nil
	}
	w := heap.Pop(p).(*waiter)
	m.available[w.ptype][w.nat]--
	w.state = stateMatched
	w.answer = make(chan string, 1)
	return w
}

// deliverAnswer hands a proxy's answer to the client waiting on sid. It
// reports false when no client waits (unknown, expired or answered Sid).
func (m *matcher) deliverAnswer(sid, answer string) bool {
	m.mu.Lock()
	w := m.sids[sid]
	if w == nil || w.state != stateMatched {
		m.mu.Unlock()
		return false
	}
	delete(m.sids, sid)
	w.state = stateDone
	m.mu.Unlock()
	w.answer <- answer
	return true
}

// finishSession forgets a matched session whose client stopped waiting.
// It reports false when an answer was delivered meanwhile (it is then in
// w.answer).
func (m *matcher) finishSession(w *waiter) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.state != stateMatched {
		return false
	}
	if m.sids[w.sid] == w {
		delete(m.sids, w.sid)
	}
	w.state = stateDone
	return true
}

// abandon ends a matched session whose proxy went away before it got the
// offer: the client stops waiting at once.
func (m *matcher) abandon(w *waiter) {
	if m.finishSession(w) {
		w.answer <- ""
	}
}

// drain removes every waiting proxy, for shutdown.
func (m *matcher) drain() []*waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*waiter
	for _, p := range []*pool{&m.unrestricted, &m.restricted} {
		for len(*p) > 0 {
			w := (*p)[0]
			m.removeLocked(w)
			out = append(out, w)
		}
	}
	return out
}

// counts returns the number of waiting proxies by pool, and by type and NAT.
func (m *matcher) counts() (unrestricted, restricted int, byType [][numNAT]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byType = make([][numNAT]int, len(m.available))
	copy(byType, m.available)
	return len(m.unrestricted), len(m.restricted), byType
}
