package turbotunnel

import (
	"net"
	"sync"
	"time"
)

// taggedPacket is a queued incoming packet and its source.
type taggedPacket struct {
	p    []byte
	addr net.Addr
}

// clientQueue is one client's outgoing queue.
type clientQueue struct {
	ch       chan []byte
	lastUsed time.Time
}

// QueuePacketConn is the bridge side's net.PacketConn. Carrier connections
// (WebSockets) feed incoming packets with QueueIncoming and drain the packets
// KCP writes to a ClientID with OutgoingQueue. Per-client outgoing queues are
// kept for timeout after their last use so a client can pick them up through
// its next proxy.
//
// Buffer ownership, which keeps one client's bytes from ever reaching
// another: every queued packet is a private copy in a pooled buffer, and at
// any moment exactly one party owns it. QueueIncoming and WriteTo own it
// until it is in a channel; a channel receive hands it to exactly one
// receiver. ReadFrom copies it out and only then recycles it. A receiver
// from OutgoingQueue owns what it receives and may recycle it with Restore
// once nothing (no pending Write, no retained slice) refers to it any more.
// A queue that expires is drained by the janitor, which thereby owns and
// recycles what it drains.
type QueuePacketConn struct {
	localAddr net.Addr
	timeout   time.Duration
	recvQueue chan taggedPacket

	mu      sync.Mutex
	clients map[net.Addr]*clientQueue
	now     func() time.Time // time source, replaced in tests

	closeOnce   sync.Once
	closed      chan struct{}
	janitorDone chan struct{}
}

// NewQueuePacketConn returns a QueuePacketConn whose LocalAddr is localAddr and
// whose idle per-client queues expire after timeout (never, if timeout ≤ 0).
// Close stops the goroutine that expires them.
func NewQueuePacketConn(localAddr net.Addr, timeout time.Duration) *QueuePacketConn {
	c := &QueuePacketConn{
		localAddr:   localAddr,
		timeout:     timeout,
		recvQueue:   make(chan taggedPacket, QueueSize),
		clients:     make(map[net.Addr]*clientQueue),
		now:         time.Now,
		closed:      make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	go c.janitor()
	return c
}

// janitor expires idle client queues until the conn is closed.
func (c *QueuePacketConn) janitor() {
	defer close(c.janitorDone)
	if c.timeout <= 0 {
		<-c.closed
		return
	}
	tick := time.NewTicker(max(c.timeout/2, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-tick.C:
			c.expire()
		}
	}
}

// expire removes the queues unused for longer than the timeout and recycles
// the packets left in them.
func (c *QueuePacketConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for key, q := range c.clients {
		if now.Sub(q.lastUsed) <= c.timeout {
			continue
		}
		delete(c.clients, key)
		// A carrier may still hold the channel and compete for these
		// packets; each receive still gives a buffer to only one side.
		for drained := false; !drained; {
			select {
			case p := <-q.ch:
				putBuf(p)
			default:
				drained = true
			}
		}
	}
}

// addrKey is a comparable stand-in for addresses that are not ClientIDs, so
// that any net.Addr (some hold slices) can key the map.
type addrKey struct{ network, addr string }

func (k addrKey) Network() string { return k.network }
func (k addrKey) String() string  { return k.addr }

func queueKey(addr net.Addr) net.Addr {
	if _, ok := addr.(ClientID); ok {
		return addr // the usual case; no allocation
	}
	return addrKey{addr.Network(), addr.String()}
}

// queueLocked returns addr's queue, creating it if needed, and marks it used.
func (c *QueuePacketConn) queueLocked(addr net.Addr) *clientQueue {
	key := queueKey(addr)
	q := c.clients[key]
	if q == nil {
		q = &clientQueue{ch: make(chan []byte, QueueSize)}
		c.clients[key] = q
	}
	q.lastUsed = c.now()
	return q
}

// QueueIncoming queues a copy of p as a packet from addr for ReadFrom. It
// drops the packet if the incoming queue is full or the conn is closed. p may
// be reused by the caller as soon as QueueIncoming returns. Packets longer
// than 2048 bytes are dropped too.
func (c *QueuePacketConn) QueueIncoming(p []byte, addr net.Addr) {
	if len(p) > bufSize {
		return
	}
	select {
	case <-c.closed:
		return
	default:
	}
	buf := getBuf(len(p))
	copy(buf, p)
	select {
	case c.recvQueue <- taggedPacket{buf, addr}:
	default:
		putBuf(buf) // never shared, so recycling is safe
	}
}

// OutgoingQueue returns the queue of packets written to addr, creating it if
// needed, and counts as a use of it. Each received slice belongs to the
// receiver until it passes it back with Restore.
//
// The channel is never closed; a receiver should also watch its carrier and
// the conn's lifetime. If the queue expires while a receiver still holds it,
// packets written later go to a new queue, so carriers should fetch the
// queue when they start rather than cache it across carriers.
func (c *QueuePacketConn) OutgoingQueue(addr net.Addr) <-chan []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queueLocked(addr).ch
}

// Restore returns a buffer obtained from OutgoingQueue for reuse once the
// receiver is completely done with it. Calling it is optional. After Restore
// neither p nor any slice of it may be used: the memory will carry another
// client's packet. In particular, do not Restore a packet handed to a writer
// whose Write has not returned, or to anything that keeps it (a channel, a
// goroutine). Slices that did not come from a QueuePacketConn are ignored.
func (c *QueuePacketConn) Restore(p []byte) { putBuf(p) }

// ReadFrom implements net.PacketConn. It copies the next incoming packet
// into p (truncating it if p is too short, as UDP does) and blocks until
// there is one or the conn is closed.
func (c *QueuePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, c.opError("read")
	default:
	}
	select {
	case <-c.closed:
		return 0, nil, c.opError("read")
	case pkt := <-c.recvQueue:
		n := copy(p, pkt.p)
		putBuf(pkt.p) // copied out; this goroutine was its only owner
		return n, pkt.addr, nil
	}
}

// WriteTo implements net.PacketConn. It copies p into addr's outgoing queue,
// dropping it if the queue is full. Packets longer than MaxPacketSize are
// dropped. Dropping is not an error: KCP retransmits.
func (c *QueuePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write")
	default:
	}
	if len(p) > MaxPacketSize {
		return len(p), nil
	}
	// KCP reuses p as soon as we return, so the queue gets a copy.
	buf := getBuf(len(p))
	copy(buf, p)
	c.mu.Lock()
	// Sending under the lock means an expiring queue is drained after any
	// send to it, so no buffer is stranded in a forgotten channel.
	select {
	case c.queueLocked(addr).ch <- buf:
	default:
		putBuf(buf)
	}
	c.mu.Unlock()
	return len(p), nil
}

func (c *QueuePacketConn) opError(op string) error {
	return closedError(op, c.localAddr, nil, ErrClosed)
}

// closedError builds the *net.OpError returned once a conn is closed.
func closedError(op string, local, remote net.Addr, err error) error {
	e := &net.OpError{Op: op, Source: local, Addr: remote, Err: err}
	if local != nil {
		e.Net = local.Network()
	}
	return e
}

// Close implements net.PacketConn. It unblocks ReadFrom, makes later calls
// fail with an error wrapping ErrClosed and stops the expiry goroutine
// before returning. Closing twice returns an error.
func (c *QueuePacketConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
	})
	<-c.janitorDone
	if !first {
		return c.opError("close")
	}
	return nil
}

// LocalAddr implements net.PacketConn.
func (c *QueuePacketConn) LocalAddr() net.Addr { return c.localAddr }

// SetDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetDeadline(t time.Time) error { return nil }

// SetReadDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetReadDeadline(t time.Time) error { return nil }

// SetWriteDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetWriteDeadline(t time.Time) error { return nil }
