package turbotunnel

import (
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// This file is an in-process network for session tests: simulated carriers
// (what a data channel through a proxy is to the client and a WebSocket is
// to the bridge) that deliver each Write as one message after a delay, and
// may lose or reorder messages, from a seeded generator so runs repeat. It
// uses only timers and channels, so under testing/synctest it runs in
// simulated time.

// linkProfile describes one direction of a simulated carrier.
type linkProfile struct {
	Delay  time.Duration // one-way delay
	Jitter time.Duration // extra random delay in [0, Jitter): reorders messages
	Loss   float64       // probability that a message is lost
	// IdleClose, when positive, models Tor's proxy: the carrier closes
	// when nothing has crossed the bridge-to-client direction for this
	// long.
	IdleClose time.Duration
}

// simLink is one carrier: a client end and a bridge end.
type simLink struct {
	Client, Bridge *simEnd

	mu       sync.Mutex
	rng      *rand.Rand
	prof     linkProfile
	cut      bool // silently dead: nothing is delivered any more
	idle     *time.Timer
	closed   bool
	messages int // messages written, both directions
}

// simEnd is one end of a simLink, a net.Conn.
type simEnd struct {
	link   *simLink
	peer   *simEnd
	toPeer bool // true for the bridge end (its writes go to the client)

	mu       sync.Mutex
	inflight []inflight // sent, not yet due, in time order
	queue    [][]byte
	pending  []byte
	notify   chan struct{}
	closed   bool
	deadline time.Time
	dlTimer  *time.Timer
	written  int       // writes made from this end, for sparing the prologue
	lastAt   time.Time // delivery time of the latest message from this end
	floorAt  time.Time // no message may overtake the spared ones
}

func newSimLink(seed uint64, prof linkProfile) *simLink {
	l := &simLink{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), prof: prof}
	l.Client = &simEnd{link: l, notify: make(chan struct{}, 1)}
	l.Bridge = &simEnd{link: l, notify: make(chan struct{}, 1), toPeer: true}
	l.Client.peer, l.Bridge.peer = l.Bridge, l.Client
	if prof.IdleClose > 0 {
		l.idle = time.AfterFunc(prof.IdleClose, l.Close)
	}
	return l
}

// Cut makes the link silently dead for the client, like a proxy killed
// with SIGKILL: the client end hears nothing more and its writes vanish,
// while the bridge end is closed (the proxy's TCP connection is reset).
func (l *simLink) Cut() {
	l.mu.Lock()
	l.cut = true
	l.mu.Unlock()
	l.Bridge.closeEnd()
}

// Close closes both ends, like a proxy that ends its data channel.
func (l *simLink) Close() {
	l.mu.Lock()
	l.closed = true
	if l.idle != nil {
		l.idle.Stop()
	}
	l.mu.Unlock()
	l.Client.closeEnd()
	l.Bridge.closeEnd()
}

// transmit schedules msg from e to its peer.
func (l *simLink) transmit(from *simEnd, msg []byte, spare bool) {
	l.mu.Lock()
	if l.cut || l.closed {
		l.mu.Unlock()
		return
	}
	l.messages++
	d := l.prof.Delay
	if !spare {
		if l.prof.Loss > 0 && l.rng.Float64() < l.prof.Loss {
			l.mu.Unlock()
			return
		}
		if l.prof.Jitter > 0 {
			d += time.Duration(l.rng.Int64N(int64(l.prof.Jitter)))
		}
	}
	if from.toPeer && l.idle != nil {
		l.idle.Reset(l.prof.IdleClose)
	}
	// Timers due at the same instant fire in any order, so equal times are
	// spread by a nanosecond: without jitter a direction stays FIFO.
	now := time.Now()
	at := now.Add(d)
	if !at.After(from.floorAt) {
		at = from.floorAt.Add(time.Nanosecond)
	}
	if (spare || l.prof.Jitter == 0) && !at.After(from.lastAt) {
		at = from.lastAt.Add(time.Nanosecond)
	}
	if at.After(from.lastAt) {
		from.lastAt = at
	}
	if spare {
		from.floorAt = at
	}
	l.mu.Unlock()
	to := from.peer
	to.schedule(at, msg)
	time.AfterFunc(at.Sub(now), func() {
		l.mu.Lock()
		dead := l.cut && to == l.Client
		l.mu.Unlock()
		to.flush(dead)
	})
}

// inflight is a message on its way, due at a time.
type inflight struct {
	at  time.Time
	msg []byte
}

// schedule files msg for delivery at at, in time order.
func (e *simEnd) schedule(at time.Time, msg []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := len(e.inflight)
	for i > 0 && e.inflight[i-1].at.After(at) {
		i--
	}
	e.inflight = append(e.inflight, inflight{})
	copy(e.inflight[i+1:], e.inflight[i:])
	e.inflight[i] = inflight{at, msg}
}

// flush delivers every message that is due, in time order. Timers run
// their functions on goroutines of their own, so in real time a later
// message's timer may run first; it then delivers the earlier one too.
// A dead end drops them.
func (e *simEnd) flush(dead bool) {
	now := time.Now()
	e.mu.Lock()
	n := 0
	for n < len(e.inflight) && !e.inflight[n].at.After(now) {
		if !dead && !e.closed {
			e.queue = append(e.queue, e.inflight[n].msg)
		}
		n++
	}
	e.inflight = e.inflight[n:]
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

func (e *simEnd) closeEnd() {
	e.mu.Lock()
	e.closed = true
	if e.dlTimer != nil {
		e.dlTimer.Stop()
	}
	e.mu.Unlock()
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// Read returns the bytes of delivered messages in arrival order.
func (e *simEnd) Read(p []byte) (int, error) {
	for {
		e.mu.Lock()
		if len(e.pending) == 0 && len(e.queue) > 0 {
			e.pending, e.queue = e.queue[0], e.queue[1:]
		}
		if len(e.pending) > 0 {
			n := copy(p, e.pending)
			e.pending = e.pending[n:]
			e.mu.Unlock()
			return n, nil
		}
		if e.closed {
			e.mu.Unlock()
			return 0, io.EOF
		}
		if !e.deadline.IsZero() && !time.Now().Before(e.deadline) {
			e.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		e.mu.Unlock()
		<-e.notify
	}
}

// Write sends p as one message. The first two writes from each end (the
// prologue, or the first answers) are never lost or reordered.
func (e *simEnd) Write(p []byte) (int, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return 0, net.ErrClosed
	}
	e.written++
	spare := e.written <= 2
	e.mu.Unlock()
	e.link.transmit(e, append([]byte(nil), p...), spare)
	return len(p), nil
}

// Close closes the link, unless it was cut: the client end of a cut link
// learns nothing from the bridge end closing.
func (e *simEnd) Close() error {
	e.link.mu.Lock()
	cut := e.link.cut
	e.link.mu.Unlock()
	if cut {
		e.closeEnd()
		return nil
	}
	e.link.Close()
	return nil
}

func (e *simEnd) SetReadDeadline(t time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline = t
	if e.dlTimer != nil {
		e.dlTimer.Stop()
		e.dlTimer = nil
	}
	if !t.IsZero() {
		e.dlTimer = time.AfterFunc(time.Until(t), func() {
			select {
			case e.notify <- struct{}{}:
			default:
			}
		})
	}
	return nil
}

func (e *simEnd) SetDeadline(t time.Time) error      { return e.SetReadDeadline(t) }
func (e *simEnd) SetWriteDeadline(t time.Time) error { return nil }
func (e *simEnd) LocalAddr() net.Addr                { return stubAddr("sim") }
func (e *simEnd) RemoteAddr() net.Addr               { return stubAddr("sim") }
