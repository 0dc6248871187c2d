package carrier

import (
	"net"
	"sync"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// Intake is the incoming side of one KCP engine. Every WebSocket feeding
// the engine gets an inlet with a queue of its own, and the engine's reader
// takes packets from the inlets in turn: a WebSocket that floods fills only
// its own inlet (and loses what does not fit there), while the others
// still get their share of the engine. The packets queued in all inlets
// together are bounded too; when that bound is reached a packet is dropped
// from the longest inlet (roughly: the longest seen lately), so that many
// flooders cannot crowd out a light user either.
type Intake struct {
	perInlet, total int
	queued          int    // packets in all inlets
	longest         *Inlet // a candidate for dropping when total is reached

	mu     sync.Mutex
	ready  []*Inlet // inlets holding packets, in service order, from head
	head   int
	wake   chan struct{} // signalled when ready becomes non-empty
	closed chan struct{}
	once   sync.Once
}

// NewIntake returns an Intake holding at most perInlet packets per inlet
// and total in all (total < perInlet means perInlet).
func NewIntake(perInlet, total int) *Intake {
	return &Intake{
		perInlet: perInlet,
		total:    max(total, perInlet),
		wake:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
	}
}

// Inlet is one WebSocket's queue into an intake. Its methods other than
// queue and close are called with the intake's lock held.
type Inlet struct {
	in     *Intake
	addr   net.Addr
	ring   [][]byte // circular, len(ring) == capacity once grown
	head   int
	n      int
	queued bool // in in.ready
	gone   bool
	drops  int // packets dropped because the ring was full
}

// NewInlet returns an Inlet whose packets come from addr.
func (in *Intake) NewInlet(addr net.Addr) *Inlet {
	return &Inlet{in: in, addr: addr}
}

// Queue queues a copy of p, in a buffer sized to it. It reports false if
// a packet of this inlet was dropped because it holds too many.
func (l *Inlet) Queue(p []byte) bool {
	in := l.in
	in.mu.Lock()
	if l.gone {
		in.mu.Unlock()
		return true
	}
	if l.n == in.perInlet {
		l.drops++
		in.mu.Unlock()
		return false
	}
	if in.queued >= in.total {
		// Make room at the expense of the longest inlet, unless that is
		// this one (or none is longer).
		v := in.longest
		if v == nil || v == l || v.n <= l.n {
			l.drops++
			in.mu.Unlock()
			return false
		}
		v.drops++
		PutPacketBuf(v.popNewest())
	}
	if l.n == len(l.ring) {
		l.grow()
	}
	buf := getPacketBuf(len(p))
	copy(buf, p)
	l.ring[(l.head+l.n)%len(l.ring)] = buf
	l.n++
	in.queued++
	if in.longest == nil || l.n > in.longest.n {
		in.longest = l
	}
	if !l.queued {
		l.queued = true
		in.ready = append(in.ready, l)
		if len(in.ready)-in.head == 1 {
			select {
			case in.wake <- struct{}{}:
			default:
			}
		}
	}
	in.mu.Unlock()
	return true
}

// grow doubles the ring, up to perInlet: most WebSockets never have more
// than a packet or two waiting, so they should not pay for a full ring.
func (l *Inlet) grow() {
	size := min(max(2*len(l.ring), 4), l.in.perInlet)
	ring := make([][]byte, size)
	for i := range l.n {
		ring[i] = l.ring[(l.head+i)%len(l.ring)]
	}
	l.ring, l.head = ring, 0
}

// Close drops the packets still queued; the inlet takes no more.
func (l *Inlet) Close() {
	in := l.in
	in.mu.Lock()
	defer in.mu.Unlock()
	l.gone = true
	for l.n > 0 {
		PutPacketBuf(l.pop())
	}
	if in.longest == l {
		in.longest = nil
	}
	// A queued inlet stays in ready until the reader reaches it and
	// finds it empty.
}

func (l *Inlet) pop() []byte {
	p := l.ring[l.head]
	l.ring[l.head] = nil
	l.head = (l.head + 1) % len(l.ring)
	l.n--
	l.in.queued--
	return p
}

// popNewest takes the packet queued last (the oldest may be the next KCP
// needs, so it is kept).
func (l *Inlet) popNewest() []byte {
	i := (l.head + l.n - 1) % len(l.ring)
	p := l.ring[i]
	l.ring[i] = nil
	l.n--
	l.in.queued--
	return p
}

// Next takes one packet from the inlet at the head of the service order,
// which then goes to the back if it has more. ok is false if none waits.
func (in *Intake) Next() (p []byte, addr net.Addr, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.head < len(in.ready) {
		l := in.ready[in.head]
		in.ready[in.head] = nil
		in.head++
		if in.head == len(in.ready) {
			// Empty: reuse the array from its start.
			in.ready, in.head = in.ready[:0], 0
		} else if in.head >= 64 && 2*in.head >= len(in.ready) {
			// Mostly consumed: move the rest down, so the array does
			// not grow while the reader keeps up.
			n := copy(in.ready, in.ready[in.head:])
			clear(in.ready[n:])
			in.ready, in.head = in.ready[:n], 0
		}
		if l.n == 0 {
			l.queued = false
			continue
		}
		p = l.pop()
		if l.n > 0 {
			in.ready = append(in.ready, l)
		} else {
			l.queued = false
		}
		return p, l.addr, true
	}
	return nil, nil, false
}

// Read blocks until a packet is waiting, copies it into p and recycles it.
func (in *Intake) Read(p []byte) (int, net.Addr, error) {
	for {
		if pkt, addr, ok := in.Next(); ok {
			n := copy(p, pkt)
			PutPacketBuf(pkt)
			return n, addr, nil
		}
		select {
		case <-in.wake:
		case <-in.closed:
			return 0, nil, net.ErrClosed
		}
	}
}

// Close makes Read return net.ErrClosed.
func (in *Intake) Close() { in.once.Do(func() { close(in.closed) }) }

// Packet buffers for the intake come in a few sizes, so that a queued
// packet holds about as much memory as it has bytes: most packets are
// either acknowledgements (tens of bytes) or full segments. Pools hold
// pointers to arrays, which go in and out of an interface without
// allocating.
var (
	pool64   = sync.Pool{New: func() any { return new([64]byte) }}
	pool256  = sync.Pool{New: func() any { return new([256]byte) }}
	pool1024 = sync.Pool{New: func() any { return new([1024]byte) }}
	poolMax  = sync.Pool{New: func() any { return new([turbotunnel.MaxPacketSize]byte) }}
)

// getPacketBuf returns a buffer of length n <= turbotunnel.MaxPacketSize.
func getPacketBuf(n int) []byte {
	switch {
	case n <= 64:
		return pool64.Get().(*[64]byte)[:n]
	case n <= 256:
		return pool256.Get().(*[256]byte)[:n]
	case n <= 1024:
		return pool1024.Get().(*[1024]byte)[:n]
	default:
		return poolMax.Get().(*[turbotunnel.MaxPacketSize]byte)[:n]
	}
}

// PutPacketBuf recycles a buffer from getPacketBuf; nothing may use p
// afterwards.
func PutPacketBuf(p []byte) {
	switch cap(p) {
	case 64:
		pool64.Put((*[64]byte)(p[:64]))
	case 256:
		pool256.Put((*[256]byte)(p[:256]))
	case 1024:
		pool1024.Put((*[1024]byte)(p[:1024]))
	case turbotunnel.MaxPacketSize:
		poolMax.Put((*[turbotunnel.MaxPacketSize]byte)(p[:turbotunnel.MaxPacketSize]))
	}
}
