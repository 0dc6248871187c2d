package pionpeer

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Data-channel flow control: a writer blocks while more than highWater bytes
// wait in the channel's send buffer, until the buffer drains below lowWater.
// Without it a fast relay and a slow client would fill the proxy's memory.
const (
	highWater = 512 * 1024
	lowWater  = 256 * 1024
	// maxMessage is the largest data-channel message written; browsers
	// handle 16 KiB messages reliably, larger ones not always.
	maxMessage = 16 * 1024
	// maxQueued bounds the received bytes held for a slow reader; past it
	// the message callback blocks, which pushes back on SCTP natively.
	maxQueued = 1 << 20
)

// dataChannel is the part of *webrtc.DataChannel that dcConn uses; tests
// replace it.
type dataChannel interface {
	Send([]byte) error
	BufferedAmount() uint64
	SetBufferedAmountLowThreshold(uint64)
	OnBufferedAmountLow(func())
	OnMessage(func(webrtc.DataChannelMessage))
	OnClose(func())
	Close() error
}

var errConnClosed = errors.New("data channel closed")

// dcConn presents a data channel as a net.Conn: each direction is a byte
// stream and message boundaries carry no meaning (PROTOCOL.md §5.3).
type dcConn struct {
	dc      dataChannel
	onClose func() // closes the peer connection too

	mu     sync.Mutex
	cond   *sync.Cond // signals queue changes and closing to readers and the message callback
	queue  [][]byte   // received messages not yet read
	head   []byte     // rest of the message being read
	queued int        // bytes in queue and head
	closed bool       // Close was called or the channel closed
	rdl    time.Time  // read deadline
	rdlT   *time.Timer

	low     chan struct{} // buffered-amount-low events, capacity 1
	done    chan struct{} // closed on Close
	wmu     sync.Mutex    // serialises writers
	closeMu sync.Once
}

func newDCConn(dc dataChannel, onClose func()) *dcConn {
	c := &dcConn{
		dc:      dc,
		onClose: onClose,
		low:     make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	dc.OnMessage(c.push)
	// Not c.Close directly: closing the peer from inside its own callback
	// can deadlock.
	dc.OnClose(func() { go c.Close() })
	return c
}

// push queues a received message, blocking while the queue is full.
func (c *dcConn) push(msg webrtc.DataChannelMessage) {
	if len(msg.Data) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.queued >= maxQueued && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return
	}
	c.queue = append(c.queue, msg.Data)
	c.queued += len(msg.Data)
	c.cond.Broadcast()
}

// Read implements net.Conn.
func (c *dcConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.head) == 0 && len(c.queue) == 0 {
		if c.closed {
			return 0, io.EOF
		}
		if !c.rdl.IsZero() && !time.Now().Before(c.rdl) {
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
	if len(c.head) == 0 {
		c.head = c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
	}
	n := copy(p, c.head)
	c.head = c.head[n:]
	c.queued -= n
	c.cond.Broadcast()
	return n, nil
}

// Write implements net.Conn. It blocks while the channel's send buffer is
// above the high-water mark.
func (c *dcConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		for c.dc.BufferedAmount() > highWater {
			select {
			case <-c.low:
			case <-c.done:
				return written, errConnClosed
			}
		}
		select {
		case <-c.done:
			return written, errConnClosed
		default:
		}
		chunk := p[:min(len(p), maxMessage)]
		if err := c.dc.Send(chunk); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// Close implements net.Conn; it closes the data channel and its peer.
func (c *dcConn) Close() error {
	c.closeMu.Do(func() {
		c.mu.Lock()
		c.closed = true
		if c.rdlT != nil {
			c.rdlT.Stop()
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		close(c.done)
		c.dc.Close()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}

type dcAddr struct{}

func (dcAddr) Network() string { return "webrtc" }
func (dcAddr) String() string  { return "webrtc" }

// LocalAddr implements net.Conn.
func (c *dcConn) LocalAddr() net.Addr { return dcAddr{} }

// RemoteAddr implements net.Conn.
func (c *dcConn) RemoteAddr() net.Addr { return dcAddr{} }

// SetDeadline implements net.Conn; only the read deadline is supported.
func (c *dcConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *dcConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl = t
	if c.rdlT != nil {
		c.rdlT.Stop()
		c.rdlT = nil
	}
	if !t.IsZero() {
		c.rdlT = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
	c.cond.Broadcast()
	return nil
}

// SetWriteDeadline implements net.Conn. Write deadlines are not supported:
// a blocked Write ends when the conn is closed.
func (c *dcConn) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }
