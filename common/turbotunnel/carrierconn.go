package turbotunnel

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// Defaults of CarrierOptions.
const (
	// DefaultFailTimeout is how long the carrier in use may stay silent
	// while the session waits for an answer before sending moves to
	// another carrier.
	DefaultFailTimeout = time.Second
	// DefaultKeepAlive is how long a carrier may receive nothing before it
	// is sent a heartbeat. It keeps idle carriers alive: Tor's proxies
	// drop a data channel after 30 s without bytes from the bridge.
	DefaultKeepAlive = 5 * time.Second
	// DefaultDeadTimeout closes a carrier that received nothing for this
	// long despite heartbeats (the reference client's 20 s).
	DefaultDeadTimeout = 20 * time.Second
)

// flowEvidence is how many packets other carriers must receive while the
// carrier in use is silent for FailTimeout before that silence counts as
// death: the bridge spreads downstream packets over every carrier of a
// ClientID, so a live carrier gets its share of a flow, while one or two
// packets (an idle session's keep-alives) may all land elsewhere.
const flowEvidence = 8

// closeAfter is how many FailTimeouts a carrier not in use may miss a flow
// before it is closed. Sending moves after one; closing costs a rendezvous,
// so it waits out a congested proxy's backlog.
const closeAfter = 3

// KCP segment layout (PROTOCOL.md §6.3), for the few fields read here.
const (
	kcpHeaderLen = 24
	kcpCmdPush   = 81
	kcpCmdWask   = 83
	offCmd       = 4
	offWnd       = 6
	offTS        = 8
	offSN        = 12
	offUna       = 16
	offLen       = 20
)

// recentPackets is how many of the latest packets are kept to be sent
// again on the carrier that takes over from a dead one.
const recentPackets = 64

// recentRing keeps copies of the latest packets KCP wrote. When sending
// moves off a carrier that went silent, what was written into it during
// its last second is most likely lost; sending it again at once on the new
// carrier saves waiting for KCP's backed-off retransmission timer
// (duplicates cost the receiver nothing). Among what it saves: smux window
// updates, without which the bridge stops sending after 1 MiB, and during
// a download the acknowledgements, without which the bridge's window stays
// full until its own retransmission timer fires.
type recentRing struct {
	mu   sync.Mutex
	next int
	at   [recentPackets]int64 // unix ns when written; 0 if empty
	n    [recentPackets]int
	buf  [recentPackets][MaxPacketSize]byte
}

func (r *recentRing) put(p []byte, now int64) {
	r.mu.Lock()
	i := r.next
	r.next = (i + 1) % recentPackets
	r.at[i] = now
	r.n[i] = copy(r.buf[i][:], p)
	r.mu.Unlock()
}

// resend queues, oldest first, copies of the packets written since since
// on q, as far as they fit.
func (r *recentRing) resend(since int64, q chan []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := range recentPackets {
		i := (r.next + j) % recentPackets
		if r.at[i] == 0 || r.at[i] < since {
			continue
		}
		b := getBuf(r.n[i])
		copy(b, r.buf[i][:r.n[i]])
		select {
		case q <- b:
		default:
			putBuf(b)
			return
		}
	}
}

// CarrierOptions tune a CarrierConn; zero fields take the defaults.
type CarrierOptions struct {
	// FailTimeout: see DefaultFailTimeout.
	FailTimeout time.Duration
	// KeepAlive: see DefaultKeepAlive.
	KeepAlive time.Duration
	// DeadTimeout: see DefaultDeadTimeout.
	DeadTimeout time.Duration
	// OnSwitch, if set, is called (from any goroutine, never under a
	// lock) each time sending moves from one carrier to another, with the
	// reason.
	OnSwitch func(reason string)
}

// CarrierConn is the client side's net.PacketConn: KCP runs over it, and it
// sends KCP's packets, encapsulated, over carriers (data channels through
// proxies) that come and go. Every attached carrier starts with the
// prologue, so the bridge sends downstream packets on all of them, and all
// of them are read. Upstream packets go on one carrier, the one in use;
// when it dies, or stays silent for FailTimeout while data is waiting for
// an acknowledgement (or while the others receive a flow), sending moves to
// the carrier heard from most recently, taking the packets still queued.
//
// Idle carriers get heartbeats: a KCP window probe, which the bridge's KCP
// answers. Every carrier of a ClientID drains one queue at the bridge, and
// the carrier silent for longest has waited longest there, so the answer
// goes to it; Tor's bridges behave the same. That keeps spares open through
// Tor's proxies, which close a channel after 30 s without bytes from the
// bridge. See doc/session.md.
type CarrierConn struct {
	id     ClientID
	remote net.Addr
	opts   CarrierOptions

	recvQueue    chan []byte
	holdQueue    chan []byte // packets written while no carrier is attached
	readDeadline deadline

	mu       sync.Mutex
	carriers []*carrier
	used     bool // some carrier has been in use, so a change is a switch
	err      error
	// primarySince is when the carrier in use became so (unix ns).
	primarySince int64

	primary atomic.Pointer[carrier]

	// KCP state seen in passing, for heartbeats and stall detection.
	conv       atomic.Uint32
	wndUna     atomic.Uint64 // wnd<<32 | una of the latest packet sent
	tsSN       atomic.Uint64 // ts<<32 | sn of the latest packet sent
	sndNxt     atomic.Uint32 // 1 + the highest sn pushed
	rcvUna     atomic.Uint32 // the bridge's una: what it has acknowledged
	stallSince atomic.Int64  // unix ns since when outstanding data made no progress; 0 if none
	totalRecv  atomic.Uint64
	recent     *recentRing

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// carrier is one attached carrier connection.
type carrier struct {
	conn     net.Conn
	sendQ    chan []byte
	lastRecv atomic.Int64  // unix ns
	lastSend atomic.Int64  // unix ns
	lastBeat atomic.Int64  // unix ns of the latest heartbeat
	recvMark atomic.Uint64 // totalRecv just after this carrier's latest packet
	suspect  atomic.Bool   // sending left it for its silence; cleared by a packet
	once     sync.Once
	done     chan struct{}
}

// NewCarrierConn returns a CarrierConn for the session id; remote is what
// ReadFrom reports as the source. Attach carriers with Add.
func NewCarrierConn(id ClientID, remote net.Addr, opts CarrierOptions) *CarrierConn {
	if opts.FailTimeout <= 0 {
		opts.FailTimeout = DefaultFailTimeout
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.DeadTimeout <= 0 {
		opts.DeadTimeout = DefaultDeadTimeout
	}
	c := &CarrierConn{
		id:           id,
		remote:       remote,
		opts:         opts,
		recvQueue:    make(chan []byte, QueueSize),
		holdQueue:    make(chan []byte, QueueSize),
		readDeadline: makeDeadline(),
		closed:       make(chan struct{}),
		recent:       new(recentRing),
	}
	c.wg.Go(c.monitor)
	return c
}

// Add writes the prologue to conn and attaches it as a carrier. If no
// carrier is in use, sending moves to it. Add takes ownership of conn: it
// closes it when it fails, when the CarrierConn closes, or when the
// prologue cannot be written (the error is then returned).
func (c *CarrierConn) Add(conn net.Conn) error {
	select {
	case <-c.closed:
		conn.Close()
		return c.opError("add", c.closedErr())
	default:
	}
	if err := WritePrologue(conn, c.id); err != nil {
		conn.Close()
		return err
	}
	now := time.Now().UnixNano()
	k := &carrier{conn: conn, sendQ: make(chan []byte, QueueSize), done: make(chan struct{})}
	k.lastRecv.Store(now)
	k.lastSend.Store(now)
	k.lastBeat.Store(now)
	k.recvMark.Store(c.totalRecv.Load())

	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		conn.Close()
		return c.opError("add", c.closedErr())
	}
	c.carriers = append(c.carriers, k)
	switched := false
	if c.primary.Load() == nil {
		switched = c.used
		c.used = true
		c.primary.Store(k)
		c.primarySince = now
		c.stallSince.Store(0)
		drain(c.holdQueue, k.sendQ)
	}
	c.wg.Add(2)
	c.mu.Unlock()
	go c.receive(k)
	go c.send(k)
	if switched {
		c.switched("previous carrier lost")
	}
	return nil
}

// Carriers returns how many carriers are attached.
func (c *CarrierConn) Carriers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.carriers)
}

func (c *CarrierConn) switched(reason string) {
	if c.opts.OnSwitch != nil {
		c.opts.OnSwitch(reason)
	}
}

// drain moves the packets waiting in from to to, dropping what does not fit.
func drain(from, to chan []byte) {
	for {
		select {
		case p := <-from:
			select {
			case to <- p:
			default:
				putBuf(p)
			}
		default:
			return
		}
	}
}

// bestLocked returns the attached carrier other than except heard from
// most recently (the newest on a tie), preferring carriers not suspect, or
// nil. c.mu must be held.
func (c *CarrierConn) bestLocked(except *carrier) *carrier {
	var best *carrier
	for _, k := range c.carriers {
		if k == except {
			continue
		}
		// A carrier sending already left for its silence comes last.
		if best == nil || (best.suspect.Load() && !k.suspect.Load()) ||
			(best.suspect.Load() == k.suspect.Load() && k.lastRecv.Load() >= best.lastRecv.Load()) {
			best = k
		}
	}
	return best
}

// othersFlowLocked reports whether the other carriers received a flow that
// k had no part in: flowEvidence packets since k's latest, one carrier's
// latest more than after ns after k's and within FailTimeout of now. Packets that came just before k fell silent
// (say, before a proxy was killed) are no such evidence. c.mu is held.
func (c *CarrierConn) othersFlowLocked(k *carrier, now, after int64) bool {
	if c.totalRecv.Load()-k.recvMark.Load() < flowEvidence {
		return false
	}
	last := k.lastRecv.Load()
	for _, o := range c.carriers {
		// The flow must still be going on: a carrier that was busy
		// until it died is no evidence against the one left.
		if r := o.lastRecv.Load(); o != k && r-last > after && now-r < int64(c.opts.FailTimeout) {
			return true
		}
	}
	return false
}

// fail detaches k and closes its connection. If k was in use, sending
// moves to the best remaining carrier with k's queued packets.
func (c *CarrierConn) fail(k *carrier) {
	k.once.Do(func() {
		close(k.done)
		k.conn.Close()
		c.mu.Lock()
		for i, x := range c.carriers {
			if x == k {
				c.carriers = append(c.carriers[:i], c.carriers[i+1:]...)
				break
			}
		}
		switched := false
		if c.primary.Load() == k {
			next := c.bestLocked(nil)
			c.primary.Store(next)
			c.primarySince = time.Now().UnixNano()
			c.stallSince.Store(0)
			if next != nil {
				drain(k.sendQ, next.sendQ)
				c.recent.resend(time.Now().UnixNano()-2*int64(c.opts.FailTimeout), next.sendQ)
				c.tellUna(next, time.Now().UnixNano())
				switched = true
			} else {
				drain(k.sendQ, c.holdQueue)
			}
		}
		c.mu.Unlock()
		if switched {
			c.switched("carrier closed")
		}
	})
}

// receive decapsulates packets from k into the receive queue until a read
// fails.
func (c *CarrierConn) receive(k *carrier) {
	defer c.wg.Done()
	defer c.fail(k)
	br := bufio.NewReader(k.conn)
	buf := getBuf(bufSize)
	defer func() { putBuf(buf) }()
	for {
		n, err := encapsulation.ReadData(br, buf[:bufSize])
		if err == io.ErrShortBuffer {
			continue // no KCP packet is that long; skip it, stay in sync
		}
		if err != nil {
			return
		}
		k.lastRecv.Store(time.Now().UnixNano())
		k.recvMark.Store(c.totalRecv.Add(1))
		if k.suspect.Load() {
			k.suspect.Store(false)
		}
		c.noteReceived(buf[:n])
		select {
		case c.recvQueue <- buf[:n]:
			buf = getBuf(bufSize) // the queue owns the old one now
		default:
			// Full: drop the packet and reuse the buffer.
		}
	}
}

// noteReceived follows the bridge's acknowledgements (the una field, the
// same in every segment of a packet) to know whether sent data is waiting.
func (c *CarrierConn) noteReceived(p []byte) {
	if len(p) < kcpHeaderLen {
		return
	}
	una := binary.LittleEndian.Uint32(p[offUna:])
	for {
		old := c.rcvUna.Load()
		if int32(una-old) <= 0 {
			return // no progress
		}
		if c.rcvUna.CompareAndSwap(old, una) {
			break
		}
	}
	if int32(c.sndNxt.Load()-una) > 0 {
		c.stallSince.Store(time.Now().UnixNano()) // progress, still outstanding
	} else {
		c.stallSince.Store(0)
	}
}

// noteSent records the header fields of a packet KCP sends: for
// heartbeats, and the highest sequence number pushed.
func (c *CarrierConn) noteSent(p []byte) (pushed bool) {
	if len(p) < kcpHeaderLen {
		return false
	}
	c.conv.Store(binary.LittleEndian.Uint32(p))
	c.wndUna.Store(uint64(binary.LittleEndian.Uint16(p[offWnd:]))<<32 | uint64(binary.LittleEndian.Uint32(p[offUna:])))
	c.tsSN.Store(uint64(binary.LittleEndian.Uint32(p[offTS:]))<<32 | uint64(binary.LittleEndian.Uint32(p[offSN:])))
	// A packet may hold several segments; find the highest pushed sn.
	var top uint32
	for len(p) >= kcpHeaderLen {
		n := int(binary.LittleEndian.Uint32(p[offLen:]))
		if p[offCmd] == kcpCmdPush {
			sn := binary.LittleEndian.Uint32(p[offSN:])
			if !pushed || int32(sn-top) > 0 {
				top = sn
			}
			pushed = true
		}
		if n < 0 || n > len(p)-kcpHeaderLen {
			break
		}
		p = p[kcpHeaderLen+n:]
	}
	if !pushed {
		return false
	}
	nxt := top + 1
	old := c.sndNxt.Load()
	if int32(nxt-old) <= 0 {
		return true // a retransmission
	}
	c.sndNxt.Store(nxt) // KCP serialises its output, so no lost update
	if old == c.rcvUna.Load() {
		c.stallSince.CompareAndSwap(0, time.Now().UnixNano()) // newly outstanding
	}
	return true
}

// send writes k's queued packets until a write fails or k is detached.
// Packets already waiting behind the first go out in the same write, up to
// MaxBatchSize.
func (c *CarrierConn) send(k *carrier) {
	defer c.wg.Done()
	defer c.fail(k)
	batch := make([]byte, 0, MaxBatchSize)
	for {
		select {
		case <-k.done:
			return
		case <-c.closed:
			return
		case p := <-k.sendQ:
			batch = appendBatch(batch[:0], p, k.sendQ, putBuf)
			k.lastSend.Store(time.Now().UnixNano())
			if _, err := k.conn.Write(batch); err != nil {
				return
			}
		}
	}
}

// heartbeat queues a KCP window probe on k; the bridge's KCP answers it
// with a window update. It needs a packet of KCP's to copy the
// conversation from, and does nothing before one was sent.
func (c *CarrierConn) heartbeat(k *carrier) {
	conv := c.conv.Load()
	if conv == 0 {
		return
	}
	wu, ts := c.wndUna.Load(), c.tsSN.Load()
	p := getBuf(kcpHeaderLen)
	binary.LittleEndian.PutUint32(p, conv)
	p[offCmd] = kcpCmdWask
	p[offCmd+1] = 0 // frg
	binary.LittleEndian.PutUint16(p[offWnd:], uint16(wu>>32))
	binary.LittleEndian.PutUint32(p[offTS:], uint32(ts>>32))
	binary.LittleEndian.PutUint32(p[offSN:], uint32(ts))
	binary.LittleEndian.PutUint32(p[offUna:], uint32(wu))
	binary.LittleEndian.PutUint32(p[offLen:], 0)
	select {
	case k.sendQ <- p:
	default:
		putBuf(p) // busy carriers need no heartbeat
	}
}

// tellUna queues a heartbeat on k at once: the window probe carries the
// latest una and window KCP sent, and the bridge's KCP reads those from
// every segment. After sending moved off a dead carrier, the
// acknowledgements written into it are lost; without this the bridge,
// its window full of unacknowledged data, would wait for its
// retransmission timeout before sending again.
func (c *CarrierConn) tellUna(k *carrier, now int64) {
	k.lastBeat.Store(now)
	c.heartbeat(k)
}

// monitor watches the carriers: it moves sending away from a silent
// carrier, sends heartbeats on idle ones and closes dead ones.
func (c *CarrierConn) monitor() {
	tick := time.NewTicker(c.opts.FailTimeout / 10)
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return
		case now := <-tick.C:
			c.check(now.UnixNano())
		}
	}
}

func (c *CarrierConn) check(now int64) {
	fail := int64(c.opts.FailTimeout)
	keep := int64(c.opts.KeepAlive)
	var dead []*carrier
	var beat *carrier
	switched := ""
	c.mu.Lock()
	if p := c.primary.Load(); p != nil && len(c.carriers) > 1 {
		stall := c.stallSince.Load()
		stalled := stall != 0 && now-stall > fail
		// A carrier just put in use gets FailTimeout before its silence
		// counts: it may have been idle until now.
		silent := now-p.lastRecv.Load() > fail && now-c.primarySince > fail
		if stalled || (silent && c.othersFlowLocked(p, now, fail/2)) {
			if next := c.bestLocked(p); next != nil {
				c.primary.Store(next)
				c.primarySince = now
				drain(p.sendQ, next.sendQ)
				c.recent.resend(now-2*fail, next.sendQ)
				c.tellUna(next, now)
				p.suspect.Store(true)
				if stalled {
					c.stallSince.Store(now) // give the new carrier its own FailTimeout
				}
				switched = "carrier silent while others receive"
				if stalled {
					switched = "no acknowledgement for FailTimeout"
				}
			}
		} else if now-p.lastRecv.Load() > fail/2 {
			// During a download the client sends only
			// acknowledgements, so nothing is outstanding and only
			// the flow on other carriers can show the carrier in use
			// dead. But if it is dead, the bridge got no
			// acknowledgement since, and with its window full it sends
			// nothing until its retransmission timeout: seconds
			// behind a backlog. Telling the bridge our una over
			// another carrier that was heard since lets it send on,
			// which gives that evidence within FailTimeout (and data
			// meanwhile). A live carrier merely backlogged loses
			// nothing by it: duplicate acknowledgements are harmless.
			// The latest acknowledgements go along: they let the
			// bridge's fast retransmission fill the holes its packets
			// lost in the dead carrier left.
			if o := c.bestLocked(p); o != nil && o.lastRecv.Load() > p.lastRecv.Load() && now-o.lastBeat.Load() >= fail/2 {
				c.recent.resend(now-2*fail, o.sendQ)
				c.tellUna(o, now)
			}
		}
	}
	primary := c.primary.Load()
	for _, k := range c.carriers {
		recv := k.lastRecv.Load()
		switch {
		case k != primary && k.suspect.Load() && now-recv > closeAfter*fail && c.othersFlowLocked(k, now, fail):
			// Sending left this carrier for its silence, and it still
			// gets nothing of a flow the others receive: its proxy is
			// gone. Closing it now has a replacement collected at
			// once, not when ICE gives up. A proxy whose buffers hold
			// a second or two of backlog is silent as long, hence the
			// margin. Spares never in use are left to ICE and
			// DeadTimeout: an idle one is silent for good reasons.
			dead = append(dead, k)
		case now-recv > int64(c.opts.DeadTimeout):
			dead = append(dead, k)
		case (now-recv >= keep || now-k.lastSend.Load() >= 6*keep) && now-k.lastBeat.Load() >= keep:
			if beat == nil || recv < beat.lastRecv.Load() {
				beat = k
			}
		}
	}
	// One heartbeat per check, to the carrier silent longest: probes
	// arriving together would get one answer between them (KCP answers
	// once per flush), and the answer goes to the carrier whose pump at
	// the bridge has waited longest, which is this one.
	if beat != nil {
		c.tellUna(beat, now)
	}
	c.mu.Unlock()
	if switched != "" {
		c.switched(switched)
	}
	for _, k := range dead {
		c.fail(k)
	}
}

// closeWith closes the conn with err as the reason, once.
func (c *CarrierConn) closeWith(err error) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.err = err
		carriers := append([]*carrier(nil), c.carriers...)
		c.mu.Unlock()
		close(c.closed)
		for _, k := range carriers {
			c.fail(k)
		}
	})
	return first
}

func (c *CarrierConn) opError(op string, err error) error {
	return closedError(op, c.id, c.remote, err)
}

func (c *CarrierConn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ReadFrom implements net.PacketConn. It returns the next packet received
// on any carrier (truncated if p is too short) with remote as its source.
func (c *CarrierConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", c.closedErr())
	default:
	}
	select {
	case <-c.closed:
		return 0, nil, c.opError("read", c.closedErr())
	case <-c.readDeadline.wait():
		return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
	case buf := <-c.recvQueue:
		n := copy(p, buf)
		putBuf(buf) // copied out; this goroutine was its only owner
		return n, c.remote, nil
	}
}

// WriteTo implements net.PacketConn; addr is ignored. It queues a copy of p
// for the carrier in use (or until one is attached) and never blocks: when
// the queue is full, or p is longer than MaxPacketSize, the packet is
// dropped without an error (KCP retransmits).
func (c *CarrierConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write", c.closedErr())
	default:
	}
	if len(p) > MaxPacketSize {
		return len(p), nil
	}
	c.noteSent(p)
	c.recent.put(p, time.Now().UnixNano())
	buf := getBuf(len(p))
	copy(buf, p) // KCP reuses p as soon as we return
	if k := c.primary.Load(); k != nil {
		select {
		case k.sendQ <- buf:
		default:
			putBuf(buf)
		}
		return len(p), nil
	}
	select {
	case c.holdQueue <- buf:
	default:
		putBuf(buf)
	}
	// A carrier attached meanwhile has already drained the hold queue.
	if k := c.primary.Load(); k != nil {
		drain(c.holdQueue, k.sendQ)
	}
	return len(p), nil
}

// Close implements net.PacketConn: it closes every carrier and waits for
// the goroutines that use them. Closing twice returns an error.
func (c *CarrierConn) Close() error {
	if !c.closeWith(ErrClosed) {
		return c.opError("close", ErrClosed)
	}
	c.readDeadline.stop()
	c.wg.Wait()
	return nil
}

// LocalAddr implements net.PacketConn: the ClientID.
func (c *CarrierConn) LocalAddr() net.Addr { return c.id }

// SetDeadline implements net.PacketConn (only the read deadline is honoured).
func (c *CarrierConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn. It also applies to a ReadFrom
// already waiting; a zero t removes the deadline.
func (c *CarrierConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline implements net.PacketConn (not supported; returns nil).
// WriteTo never blocks anyway.
func (c *CarrierConn) SetWriteDeadline(t time.Time) error { return nil }

// String names the conn in logs.
func (c *CarrierConn) String() string { return fmt.Sprintf("carriers(%s)", c.id) }
