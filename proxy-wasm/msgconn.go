package main

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Limits of a message conn.
const (
	// maxMessage is the largest message sent: browsers handle 16 KiB data
	// channel messages reliably, larger ones not always.
	maxMessage = 16 * 1024
	// sendHighWater pauses writers while the browser holds more than this
	// many bytes unsent, until it drops below sendLowWater.
	sendHighWater = 1 << 20
	sendLowWater  = 256 << 10
	// maxReceiveQueue bounds what is held for a slow reader. A browser
	// cannot pause a WebSocket or a data channel, so a peer that sends far
	// ahead of what the other side takes has its connection closed rather
	// than the tab's memory filled. Turbotunnel's windows keep normal
	// traffic well below it.
	maxReceiveQueue = 32 << 20
	// lowPoll is how often a blocked writer rechecks the send buffer when
	// the platform has no "buffer low" event (WebSocket).
	lowPoll = 20 * time.Millisecond
)

// Errors of a message conn.
var (
	errClosed        = errors.New("connection closed")
	errQueueOverflow = errors.New("receive queue overflow: peer sends faster than the other side takes")
)

// msgTransport is the browser object under a msgConn: a data channel or a
// WebSocket. Its methods never block.
type msgTransport interface {
	// send queues one message.
	send(b []byte) error
	// buffered is the number of bytes queued by send and not yet sent.
	buffered() int
	// close closes the object; it may be called more than once.
	close()
}

// msgConn presents a message transport as a net.Conn: a byte stream in each
// direction, message boundaries without meaning. Events from the browser
// (push, pushEOF, bufferLow) never block, because the browser's event loop
// waits for them; Read and Write block their goroutines instead.
type msgConn struct {
	t    msgTransport
	addr net.Addr

	mu      sync.Mutex
	queue   [][]byte // received messages not yet read
	head    []byte   // rest of the message being read
	queued  int      // bytes in queue and head
	eof     bool     // the peer closed; reads drain the queue, then EOF
	closed  bool     // Close was called, or the conn failed
	failure error    // why the conn failed, if it did
	rdl     time.Time

	readable chan struct{} // capacity 1: data, EOF or a deadline change
	low      chan struct{} // capacity 1: the send buffer drained
	done     chan struct{} // closed on Close or failure
	once     sync.Once
	wmu      sync.Mutex
}

func newMsgConn(t msgTransport, addr net.Addr) *msgConn {
	return &msgConn{
		t:        t,
		addr:     addr,
		readable: make(chan struct{}, 1),
		low:      make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push queues a received message. The browser's buffer is reused, so b
// must be a copy.
func (c *msgConn) push(b []byte) {
	if len(b) == 0 {
		return
	}
	c.mu.Lock()
	if c.closed || c.eof {
		c.mu.Unlock()
		return
	}
	if c.queued+len(b) > maxReceiveQueue {
		c.mu.Unlock()
		c.fail(errQueueOverflow)
		return
	}
	c.queue = append(c.queue, b)
	c.queued += len(b)
	c.mu.Unlock()
	signal(c.readable)
}

// pushEOF records that the peer closed its side.
func (c *msgConn) pushEOF() {
	c.mu.Lock()
	c.eof = true
	c.mu.Unlock()
	signal(c.readable)
}

// bufferLow records that the send buffer drained.
func (c *msgConn) bufferLow() { signal(c.low) }

// Read implements net.Conn.
func (c *msgConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if c.closed {
			err := c.failure
			c.mu.Unlock()
			if err == nil {
				err = net.ErrClosed
			}
			return 0, err
		}
		if len(c.head) == 0 && len(c.queue) > 0 {
			c.head = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
		}
		if len(c.head) > 0 {
			n := copy(p, c.head)
			c.head = c.head[n:]
			c.queued -= n
			more := len(c.head) > 0 || len(c.queue) > 0 || c.eof
			c.mu.Unlock()
			if more {
				signal(c.readable)
			}
			return n, nil
		}
		if c.eof {
			c.mu.Unlock()
			return 0, io.EOF
		}
		var t *time.Timer
		var timeout <-chan time.Time
		if !c.rdl.IsZero() {
			d := time.Until(c.rdl)
			if d <= 0 {
				c.mu.Unlock()
				return 0, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		c.mu.Unlock()
		select {
		case <-c.readable:
		case <-c.done:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// Write implements net.Conn: it sends p in messages of at most maxMessage
// bytes, waiting while the browser holds too much unsent.
func (c *msgConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		if c.t.buffered() > sendHighWater {
			if err := c.waitLow(); err != nil {
				return written, err
			}
		}
		select {
		case <-c.done:
			return written, errClosed
		default:
		}
		chunk := p[:min(len(p), maxMessage)]
		if err := c.t.send(chunk); err != nil {
			c.fail(err)
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// waitLow blocks until the send buffer is below the low-water mark.
func (c *msgConn) waitLow() error {
	t := time.NewTicker(lowPoll)
	defer t.Stop()
	for c.t.buffered() > sendLowWater {
		select {
		case <-c.low:
		case <-t.C:
		case <-c.done:
			return errClosed
		}
	}
	return nil
}

// fail closes the conn, recording why.
func (c *msgConn) fail(err error) {
	c.mu.Lock()
	if !c.closed && c.failure == nil {
		c.failure = err
	}
	c.mu.Unlock()
	c.Close()
}

// Close implements net.Conn.
func (c *msgConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.queue, c.head, c.queued = nil, nil, 0
		c.mu.Unlock()
		close(c.done)
		c.t.close()
	})
	return nil
}

// Done is closed when the conn is closed.
func (c *msgConn) Done() <-chan struct{} { return c.done }

// LocalAddr implements net.Conn.
func (c *msgConn) LocalAddr() net.Addr { return c.addr }

// RemoteAddr implements net.Conn.
func (c *msgConn) RemoteAddr() net.Addr { return c.addr }

// SetDeadline implements net.Conn; only read deadlines are supported.
func (c *msgConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *msgConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	signal(c.readable)
	return nil
}

// SetWriteDeadline implements net.Conn. A blocked Write ends when the conn
// is closed; write deadlines are not supported.
func (c *msgConn) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

// browserAddr names the far end of a browser connection, which a page
// cannot see.
type browserAddr string

func (a browserAddr) Network() string { return string(a) }
func (a browserAddr) String() string  { return string(a) }
