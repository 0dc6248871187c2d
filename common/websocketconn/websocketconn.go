// Package websocketconn adapts WebSocket connections to net.Conn, the form the
// proxy relay and the bridge use. It builds on github.com/coder/websocket so
// the same code compiles natively and for js/wasm (where the browser's
// WebSocket is used). Both binary and text messages are read as bytes.
//
// Reads treat the incoming messages as one byte stream (message boundaries
// are not preserved, and empty messages vanish); each Write sends one binary
// message. Compression is never negotiated and no subprotocol is offered.
package websocketconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// ReadLimit is the largest incoming message accepted; a longer one closes
// the connection. Peers send at most a few KiB per message (2048 bytes from
// Go proxies, one data-channel message from others), so this is generous;
// it bounds memory on js/wasm, where whole messages are buffered.
const ReadLimit = 1<<20 + 64

// handshakeTimeout bounds the opening handshake in Dial even when ctx has no
// deadline, like the reference's 45-second dialer timeout.
const handshakeTimeout = 45 * time.Second

// Dial opens a WebSocket to url (ws:// or wss://) and returns it as a
// net.Conn whose writes are binary messages. httpClient may be nil (the
// default client, which honours the HTTP(S)_PROXY variables); it is ignored
// on js/wasm. ctx bounds the handshake only.
func Dial(ctx context.Context, url string, httpClient *http.Client) (net.Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(hctx, url, dialOptions(httpClient))
	if err != nil {
		return nil, fmt.Errorf("websocketconn: %w", err)
	}
	return newConn(ws, addr("websocket/local"), addr(hostOf(url))), nil
}

// hostOf returns the host[:port] of a URL, for RemoteAddr.
func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "websocket/unknown-addr"
	}
	return u.Host
}

// addr is a net.Addr for endpoints whose socket address is not known.
type addr string

func (a addr) Network() string { return "websocket" }
func (a addr) String() string  { return string(a) }

// conn is a WebSocket as a net.Conn.
type conn struct {
	ws            *websocket.Conn
	local, remote net.Addr

	// ctx lives as long as the conn. The library ties every read of a
	// message to the context it was opened with, so one context serves all
	// reads; cancelling it aborts pending operations and closes the socket.
	ctx    context.Context
	cancel context.CancelFunc

	readMu sync.Mutex // serialises Read; guards msg and readErr
	msg    io.Reader  // the message being read, nil between messages
	// readErr is sticky once the stream has ended.
	readErr error

	rd, wd deadline

	closeOnce sync.Once
	closeErr  error
}

func newConn(ws *websocket.Conn, local, remote net.Addr) *conn {
	ws.SetReadLimit(ReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{ws: ws, local: local, remote: remote, ctx: ctx, cancel: cancel}
	c.rd.cancel = cancel
	c.wd.cancel = cancel
	return c
}

// Read implements net.Conn, consuming messages of either type as a byte
// stream. A peer's normal or going-away close reads as io.EOF.
func (c *conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readErr != nil {
		return 0, c.readErr
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.rd.begin(); err != nil {
		return 0, c.opError("read", err)
	}
	defer c.rd.end()
	for {
		if c.msg == nil {
			_, r, err := c.ws.Reader(c.ctx)
			if err != nil {
				return 0, c.readFailed(err)
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		if err == io.EOF {
			c.msg = nil
			err = nil
		}
		if err != nil {
			return n, c.readFailed(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// readFailed translates a read error and remembers the end of the stream.
func (c *conn) readFailed(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		c.readErr = io.EOF
		return io.EOF
	}
	if c.rd.timedOut() {
		return c.opError("read", os.ErrDeadlineExceeded)
	}
	return c.opError("read", err)
}

// Write implements net.Conn: p goes out as one binary message. Concurrent
// Writes are sent one after the other.
func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.wd.begin(); err != nil {
		return 0, c.opError("write", err)
	}
	defer c.wd.end()
	if err := c.ws.Write(c.ctx, websocket.MessageBinary, p); err != nil {
		if c.wd.timedOut() {
			err = os.ErrDeadlineExceeded
		}
		return 0, c.opError("write", err)
	}
	return len(p), nil
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.local, Addr: c.remote, Err: err}
}

// Close implements net.Conn. It sends a normal-closure close frame and waits
// (a few seconds at most) for the peer's, then closes the socket, which
// unblocks pending Reads and Writes.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.rd.stop()
		c.wd.stop()
		err := c.ws.Close(websocket.StatusNormalClosure, "")
		c.cancel()
		// The peer may have closed first; that is not a failure to close.
		if err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = c.opError("close", err)
		}
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return c.closeErr
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn. As with the library's own net.Conn
// adapter, a deadline that passes while an operation is in progress closes
// the connection (a WebSocket cannot resume a half-read frame); one that
// passes between operations only makes the next one fail.
func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline implements net.Conn; see SetDeadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn; see SetDeadline.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wd.set(t)
	return nil
}

// deadline tracks one direction's deadline and its operations in progress.
type deadline struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // kills the conn
	active  int                // operations in progress
	expired bool               // the deadline has passed
	killed  bool               // it passed during an operation
	timer   *time.Timer
	gen     uint64 // counts sets, so that a stale timer can tell
}

// begin registers an operation, or fails if the deadline has passed.
func (d *deadline) begin() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired {
		return os.ErrDeadlineExceeded
	}
	d.active++
	return nil
}

func (d *deadline) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active--
}

// timedOut reports whether the deadline killed an operation.
func (d *deadline) timedOut() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.killed
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.expired = false
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.expireLocked()
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			d.expireLocked()
		}
	})
}

func (d *deadline) expireLocked() {
	d.expired = true
	if d.active > 0 {
		d.killed = true
		d.cancel()
	}
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
