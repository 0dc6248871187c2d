package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Extended ORPort command codes (tor's ext-orport-spec).
const (
	extORDone      = 0x0000
	extORUserAddr  = 0x0001
	extORTransport = 0x0002
	extOROkay      = 0x1000
	extORDeny      = 0x1001
)

// ExtORSession is what one server-PT connection told tor's Extended ORPort,
// and how tor answered.
type ExtORSession struct {
	// AuthOK is tor's verdict on the SAFE_COOKIE authentication.
	AuthOK bool
	// Transport and UserAddr are the values of the TRANSPORT and USERADDR
	// commands ("" if not sent).
	Transport, UserAddr string
	// Reply is tor's answer to DONE: "OKAY", "DENY", or "" if none came.
	Reply string
	Err   error
}

// ExtORTap sits between a server PT and tor's Extended ORPort: it relays
// every byte unchanged and records the handshake of each connection, so a
// test can see what tor was told and whether it accepted it. Point the PT
// at it by overriding TOR_PT_EXTENDED_SERVER_PORT.
type ExtORTap struct {
	Addr     string
	upstream string
	ns       *Namespace
	ln       net.Listener
	wg       sync.WaitGroup

	mu       sync.Mutex
	sessions []ExtORSession
	conns    map[net.Conn]struct{}
	closed   bool
}

// StartExtORTap listens on addr inside ns and relays to upstream (tor's
// ExtORPort, also inside ns).
func StartExtORTap(ns *Namespace, addr, upstream string) (*ExtORTap, error) {
	if err := checkLiteral(upstream); err != nil {
		return nil, err
	}
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: ExtORPort tap: %w", err)
	}
	t := &ExtORTap{Addr: ln.Addr().String(), upstream: upstream, ns: ns, ln: ln, conns: make(map[net.Conn]struct{})}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Sessions returns the handshakes seen so far.
func (t *ExtORTap) Sessions() []ExtORSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ExtORSession(nil), t.sessions...)
}

// Close stops the tap and its connections.
func (t *ExtORTap) Close() error {
	err := t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

func (t *ExtORTap) keep(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return
	}
	t.conns[c] = struct{}{}
}

func (t *ExtORTap) forget(cs ...net.Conn) {
	t.mu.Lock()
	for _, c := range cs {
		delete(t.conns, c)
	}
	t.mu.Unlock()
}

func (t *ExtORTap) accept() {
	defer t.wg.Done()
	for {
		pt, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.relay(pt)
		}()
	}
}

func (t *ExtORTap) relay(pt net.Conn) {
	defer pt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tor, err := t.ns.Dial(ctx, "tcp", t.upstream)
	cancel()
	if err != nil {
		t.record(ExtORSession{Err: err})
		return
	}
	defer tor.Close()
	t.keep(pt)
	t.keep(tor)
	defer t.forget(pt, tor)
	deadline := time.Now().Add(15 * time.Second)
	pt.SetDeadline(deadline)
	tor.SetDeadline(deadline)
	s := handshake(pt, tor)
	t.record(s)
	if s.Err != nil || s.Reply != "OKAY" {
		return
	}
	pt.SetDeadline(time.Time{})
	tor.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(tor, pt); closeWrite(tor); done <- struct{}{} }()
	go func() { io.Copy(pt, tor); closeWrite(pt); done <- struct{}{} }()
	<-done
	<-done
}

func (t *ExtORTap) record(s ExtORSession) {
	t.mu.Lock()
	t.sessions = append(t.sessions, s)
	t.mu.Unlock()
}

// handshake forwards the lock-step authentication and command exchange
// (ext-orport-spec §3–4) between pt and tor, noting what passes.
func handshake(pt, tor net.Conn) (s ExtORSession) {
	// fwd reads exactly n bytes from src, copies them to dst and returns
	// them.
	fwd := func(dst, src net.Conn, n int) []byte {
		if s.Err != nil {
			return nil
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(src, b); err != nil {
			s.Err = err
			return nil
		}
		if _, err := dst.Write(b); err != nil {
			s.Err = err
			return nil
		}
		return b
	}
	// Tor lists its auth types, ending with 0.
	for {
		b := fwd(pt, tor, 1)
		if b == nil || b[0] == 0 {
			break
		}
	}
	fwd(tor, pt, 1+32)    // chosen type, client nonce
	fwd(pt, tor, 32+32)   // server hash, server nonce
	fwd(tor, pt, 32)      // client hash
	st := fwd(pt, tor, 1) // verdict
	if s.Err != nil {
		return s
	}
	s.AuthOK = st[0] == 1
	if !s.AuthOK {
		s.Err = errors.New("tor refused the ExtORPort authentication")
		return s
	}
	for n := 0; ; n++ {
		if n > 64 {
			s.Err = errors.New("too many ExtORPort commands")
			return s
		}
		h := fwd(tor, pt, 4)
		if h == nil {
			return s
		}
		cmd, l := binary.BigEndian.Uint16(h), int(binary.BigEndian.Uint16(h[2:]))
		body := fwd(tor, pt, l)
		if body == nil && l > 0 {
			return s
		}
		switch cmd {
		case extORTransport:
			s.Transport = string(body)
		case extORUserAddr:
			s.UserAddr = string(body)
		}
		if cmd == extORDone {
			break
		}
	}
	h := fwd(pt, tor, 4)
	if h == nil {
		return s
	}
	switch cmd := binary.BigEndian.Uint16(h); cmd {
	case extOROkay:
		s.Reply = "OKAY"
	case extORDeny:
		s.Reply = "DENY"
	default:
		s.Reply = fmt.Sprintf("%#04x", cmd)
	}
	if l := int(binary.BigEndian.Uint16(h[2:])); l > 0 {
		fwd(pt, tor, l)
	}
	return s
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// UserAddrIP parses a USERADDR value ("IP:port").
func UserAddrIP(v string) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(v)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}
