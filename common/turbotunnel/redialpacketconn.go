package turbotunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// DialFunc returns a new carrier connection whose prologue (Token, ClientID)
// has already been written. It blocks until a carrier is available or ctx is
// done. RedialPacketConn calls it again as soon as a carrier fails, so any
// pacing between attempts is up to the DialFunc.
type DialFunc func(ctx context.Context) (net.Conn, error)

// ErrNilCarrier is the error a RedialPacketConn closes with when its DialFunc
// returns neither a carrier nor an error.
var ErrNilCarrier = errors.New("turbotunnel: dial returned no carrier")

// RedialPacketConn is a one-carrier-at-a-time client packet conn. It sends every packet
// written to it, encapsulated, over the current carrier; when the carrier
// fails it dials the next one and carries on, so that KCP above sees only
// packet loss. Reads return packets decapsulated from whichever carrier is
// current. See PROTOCOL.md §6.5.
//
// Packets wait in a send queue while there is no carrier; the one being
// written when a carrier fails may be lost. Both queues hold QueueSize
// packets and drop what does not fit.
//
// Deprecated: the client uses CarrierConn, which keeps every proxy
// attached and fails over within a second. RedialPacketConn remains for
// the bridge's tests until they move to CarrierConn.
type RedialPacketConn struct {
	localAddr, remoteAddr net.Addr
	dial                  DialFunc

	sendQueue    chan []byte
	recvQueue    chan []byte
	readDeadline deadline

	ctx    context.Context // cancelled by close, to abort a pending dial
	cancel context.CancelFunc

	mu      sync.Mutex
	carrier net.Conn // current carrier, nil between carriers
	err     error    // why the conn closed; set before closed is closed

	pumps     sync.WaitGroup // counts a running exchange, so Close can wait for it
	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{} // closed when the dial loop and its pumps are gone
}

// NewRedialPacketConn starts a RedialPacketConn. localAddr is typically the
// ClientID; remoteAddr is what ReadFrom reports as the source. When dial
// returns an error the conn closes with that error.
func NewRedialPacketConn(localAddr, remoteAddr net.Addr, dial DialFunc) *RedialPacketConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &RedialPacketConn{
		localAddr:    localAddr,
		remoteAddr:   remoteAddr,
		dial:         dial,
		sendQueue:    make(chan []byte, QueueSize),
		recvQueue:    make(chan []byte, QueueSize),
		readDeadline: makeDeadline(),
		ctx:          ctx,
		cancel:       cancel,
		closed:       make(chan struct{}),
		done:         make(chan struct{}),
	}
	go c.dialLoop()
	return c
}

// dialLoop dials carriers and runs the pumps over each until one fails. It
// returns when the conn is closed or dialing fails.
func (c *RedialPacketConn) dialLoop() {
	defer close(c.done)
	for {
		select {
		case <-c.closed:
			return
		default:
		}
		conn, err := c.dial(c.ctx)
		if err == nil && conn == nil {
			err = ErrNilCarrier
		}
		if err != nil {
			if conn != nil {
				conn.Close()
			}
			// After Close, err is just the cancelled context; closeWith
			// then keeps ErrClosed.
			c.closeWith(fmt.Errorf("turbotunnel: dial: %w", err))
			return
		}
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.carrier = conn
		c.pumps.Add(1) // under mu and before err is set, so never after Close's Wait
		c.mu.Unlock()

		c.exchange(conn)

		c.mu.Lock()
		c.carrier = nil
		c.mu.Unlock()
		c.pumps.Done()
	}
}

// exchange pumps packets over conn until either direction fails or the conn
// closes, then closes conn and waits for both pumps to stop.
func (c *RedialPacketConn) exchange(conn net.Conn) {
	stop := make(chan struct{})
	var once sync.Once
	fail := func() {
		once.Do(func() {
			close(stop)
			conn.Close() // unblocks the pump stuck in Read or Write
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer fail()
		c.receive(conn)
	})
	wg.Go(func() {
		defer fail()
		c.send(conn, stop)
	})
	select {
	case <-stop:
	case <-c.closed:
		fail()
	}
	wg.Wait()
}

// receive decapsulates packets from conn into the receive queue until a
// read fails.
func (c *RedialPacketConn) receive(conn net.Conn) {
	br := bufio.NewReader(conn)
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
		select {
		case c.recvQueue <- buf[:n]:
			buf = getBuf(bufSize) // the queue owns the old one now
		default:
			// Full: drop the packet and reuse the buffer.
		}
	}
}

// send writes queued packets to conn until a write fails or stop closes.
// Packets already waiting behind the first go out in the same write, up to
// MaxBatchSize.
func (c *RedialPacketConn) send(conn net.Conn, stop <-chan struct{}) {
	batch := make([]byte, 0, MaxBatchSize)
	for {
		select {
		case <-stop:
			return
		case p := <-c.sendQueue:
			batch = appendBatch(batch[:0], p, c.sendQueue, putBuf)
			if _, err := conn.Write(batch); err != nil {
				return
			}
		}
	}
}

// closeWith closes the conn with err as the reason, once.
func (c *RedialPacketConn) closeWith(err error) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.mu.Lock()
		c.err = err
		carrier := c.carrier
		c.mu.Unlock()
		close(c.closed)
		c.cancel()
		if carrier != nil {
			carrier.Close()
		}
	})
	return first
}

func (c *RedialPacketConn) opError(op string, err error) error {
	return closedError(op, c.localAddr, c.remoteAddr, err)
}

// closedErr returns the reason the conn closed.
func (c *RedialPacketConn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ReadFrom implements net.PacketConn. It returns the next received packet
// (truncated if p is too short) with remoteAddr as its source. Once the conn
// has closed it returns a *net.OpError wrapping ErrClosed or the dial error.
func (c *RedialPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
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
		return n, c.remoteAddr, nil
	}
}

// WriteTo implements net.PacketConn; addr is ignored. It queues a copy of p
// and never blocks: when the send queue is full, or p is longer than
// MaxPacketSize, the packet is dropped without an error (KCP retransmits).
func (c *RedialPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, c.opError("write", c.closedErr())
	default:
	}
	if len(p) > MaxPacketSize {
		return len(p), nil
	}
	buf := getBuf(len(p))
	copy(buf, p) // KCP reuses p as soon as we return
	select {
	case c.sendQueue <- buf:
	default:
		putBuf(buf)
	}
	return len(p), nil
}

// Close implements net.PacketConn; it also closes the current carrier and
// cancels a pending dial. It waits until nothing uses the carrier any more,
// but not for a DialFunc to notice the cancellation (the loop exits when it
// does, without dialing again). Closing twice returns an error.
func (c *RedialPacketConn) Close() error {
	if !c.closeWith(ErrClosed) {
		return c.opError("close", ErrClosed)
	}
	c.readDeadline.stop()
	c.pumps.Wait()
	return nil
}

// LocalAddr implements net.PacketConn.
func (c *RedialPacketConn) LocalAddr() net.Addr { return c.localAddr }

// SetDeadline implements net.PacketConn (only the read deadline is honoured).
func (c *RedialPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn. It also applies to a ReadFrom
// already waiting; a zero t removes the deadline.
func (c *RedialPacketConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline implements net.PacketConn (not supported; returns nil).
// WriteTo never blocks anyway.
func (c *RedialPacketConn) SetWriteDeadline(t time.Time) error { return nil }

// deadline is a resettable timer exposed as a channel that is closed while
// the deadline has passed.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	gen     uint64 // counts sets, so a stale timer can tell it is stale
	expired chan struct{}
}

func makeDeadline() deadline { return deadline{expired: make(chan struct{})} }

// set arms the deadline for t; a zero t disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	// A passed deadline leaves a closed channel; replace it so that
	// waiters from now on block again.
	select {
	case <-d.expired:
		d.expired = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.expired)
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		// A timer that fired while a later set was waiting for the lock
		// must not expire the newer deadline.
		if d.gen == gen {
			close(d.expired)
		}
	})
}

// wait returns a channel closed once the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
