package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// extORSession is what a fake Extended ORPort learned from one connection.
type extORSession struct {
	userAddr   string
	transport  string
	remoteAddr netip.AddrPort
	conn       net.Conn // after OKAY; nil if denied or failed
	err        error
}

// fakeExtORPort is the tor side of the Extended ORPort protocol
// (ext-orport-spec.txt): SAFE_COOKIE authentication, then commands until
// DONE, answered with OKAY (or DENY when deny is set).
type fakeExtORPort struct {
	ln         net.Listener
	cookie     [32]byte
	cookiePath string
	deny       bool
	sessions   chan extORSession
	seen       chan extORSession // see echo
}

func newFakeExtORPort(t *testing.T) *fakeExtORPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeExtORPort{ln: ln, sessions: make(chan extORSession, 16), seen: make(chan extORSession, 64)}
	rand.Read(f.cookie[:])
	f.cookiePath = filepath.Join(t.TempDir(), "extended_orport_auth_cookie")
	content := append([]byte("! Extended ORPort Auth Cookie !\x0a"), f.cookie[:]...)
	if err := os.WriteFile(f.cookiePath, content, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { f.sessions <- f.handshake(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeExtORPort) info() *pt.ServerInfo {
	return &pt.ServerInfo{
		ExtendedOrAddr: f.ln.Addr().(*net.TCPAddr),
		AuthCookiePath: f.cookiePath,
	}
}

func extORHash(cookie []byte, label string, clientNonce, serverNonce []byte) []byte {
	h := hmac.New(sha256.New, cookie)
	h.Write([]byte(label))
	h.Write(clientNonce)
	h.Write(serverNonce)
	return h.Sum(nil)
}

func (f *fakeExtORPort) handshake(c net.Conn) (s extORSession) {
	s.remoteAddr = c.RemoteAddr().(*net.TCPAddr).AddrPort()
	defer func() {
		if s.err != nil || s.conn == nil {
			c.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fail := func(err error) extORSession { s.err = err; return s }
	// Auth types: SAFE_COOKIE only.
	if _, err := c.Write([]byte{1, 0}); err != nil {
		return fail(err)
	}
	var choice [1]byte
	clientNonce := make([]byte, 32)
	if _, err := io.ReadFull(c, choice[:]); err != nil {
		return fail(err)
	}
	if choice[0] != 1 {
		return fail(errors.New("client chose an auth type other than SAFE_COOKIE"))
	}
	if _, err := io.ReadFull(c, clientNonce); err != nil {
		return fail(err)
	}
	serverNonce := make([]byte, 32)
	rand.Read(serverNonce)
	msg := append(extORHash(f.cookie[:], "ExtORPort authentication server-to-client hash", clientNonce, serverNonce), serverNonce...)
	if _, err := c.Write(msg); err != nil {
		return fail(err)
	}
	clientHash := make([]byte, 32)
	if _, err := io.ReadFull(c, clientHash); err != nil {
		return fail(err)
	}
	want := extORHash(f.cookie[:], "ExtORPort authentication client-to-server hash", clientNonce, serverNonce)
	if !hmac.Equal(clientHash, want) {
		c.Write([]byte{0})
		return fail(errors.New("bad client hash"))
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return fail(err)
	}
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return fail(err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return fail(err)
		}
		switch binary.BigEndian.Uint16(hdr[:2]) {
		case 0x0000: // DONE
			reply := []byte{0x10, 0x00, 0, 0} // OKAY
			if f.deny {
				reply = []byte{0x10, 0x01, 0, 0} // DENY
			}
			if _, err := c.Write(reply); err != nil {
				return fail(err)
			}
			if !f.deny {
				c.SetDeadline(time.Time{})
				s.conn = c
			}
			return s
		case 0x0001:
			s.userAddr = string(body)
		case 0x0002:
			s.transport = string(body)
		default:
			return fail(errors.New("unknown command"))
		}
	}
}

func (f *fakeExtORPort) next(t *testing.T) extORSession {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no ExtORPort connection")
		return extORSession{}
	}
}

func TestORDialerExtORPort(t *testing.T) {
	f := newFakeExtORPort(t)
	d := &ORDialer{Info: f.info(), Transport: "snowflake"}
	for _, addr := range []string{"192.0.2.7:1", "[2001:db8::7]:1", ""} {
		c, err := d.Dial(context.Background(), addr)
		if err != nil {
			t.Fatalf("Dial(%q): %v", addr, err)
		}
		s := f.next(t)
		if s.err != nil {
			t.Fatalf("fake ExtORPort: %v", s.err)
		}
		if s.userAddr != addr || s.transport != "snowflake" {
			t.Errorf("USERADDR %q TRANSPORT %q, want %q and snowflake", s.userAddr, s.transport, addr)
		}
		// The connection carries data after the handshake.
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s.conn, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q, %v", buf, err)
		}
		c.Close()
		s.conn.Close()
	}
}

func TestORDialerDeny(t *testing.T) {
	f := newFakeExtORPort(t)
	f.deny = true
	d := &ORDialer{Info: f.info(), Transport: "snowflake"}
	if c, err := d.Dial(context.Background(), "192.0.2.7:1"); err == nil {
		c.Close()
		t.Fatal("Dial succeeded although the ExtORPort denied")
	}
}

func TestORDialerWrongCookie(t *testing.T) {
	f := newFakeExtORPort(t)
	info := f.info()
	other := filepath.Join(t.TempDir(), "cookie")
	os.WriteFile(other, append([]byte("! Extended ORPort Auth Cookie !\x0a"), bytes.Repeat([]byte{7}, 32)...), 0o600)
	info.AuthCookiePath = other
	d := &ORDialer{Info: info, Transport: "snowflake"}
	if c, err := d.Dial(context.Background(), ""); err == nil {
		c.Close()
		t.Fatal("Dial succeeded with the wrong cookie")
	}
}

func TestORDialerSrcAddr(t *testing.T) {
	f := newFakeExtORPort(t)
	src := netip.MustParsePrefix("127.0.0.0/24")
	d := &ORDialer{Info: f.info(), Transport: "snowflake", SrcAddr: src}
	seen := make(map[netip.Addr]bool)
	for range 8 {
		c, err := d.Dial(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		s := f.next(t)
		if s.err != nil {
			t.Fatal(s.err)
		}
		if !src.Contains(s.remoteAddr.Addr()) {
			t.Fatalf("connection came from %v, outside %v", s.remoteAddr, src)
		}
		seen[s.remoteAddr.Addr()] = true
		c.Close()
		s.conn.Close()
	}
	if len(seen) < 2 {
		t.Errorf("8 connections came from %d source address(es); want them spread over the range", len(seen))
	}
}

func TestORDialerPlainORPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	d := &ORDialer{Info: &pt.ServerInfo{OrAddr: ln.Addr().(*net.TCPAddr)}, Transport: "snowflake"}
	c, err := d.Dial(context.Background(), "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x00\x03raw")) // no ExtORPort framing on a plain ORPort
	c.Close()
	if b := <-got; string(b) != "\x00\x03raw" {
		t.Fatalf("ORPort got %q", b)
	}
}

func TestORDialerNoPort(t *testing.T) {
	d := &ORDialer{Info: &pt.ServerInfo{}}
	if _, err := d.Dial(context.Background(), ""); err == nil {
		t.Fatal("Dial with no ORPort succeeded")
	}
}

func TestORDialerContext(t *testing.T) {
	// An ExtORPort that accepts but never speaks: the dial hangs in the
	// handshake until ctx ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			accepted <- struct{}{}
		}
	}()
	d := &ORDialer{Info: &pt.ServerInfo{ExtendedOrAddr: ln.Addr().(*net.TCPAddr), AuthCookiePath: "/nonexistent"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := d.Dial(ctx, "")
		done <- err
	}()
	// The dial is connected and waiting for a server that never speaks:
	// it must not have returned before we cancel.
	select {
	case <-accepted:
	case err := <-done:
		t.Fatalf("dial returned before the ExtORPort accepted: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the dial never reached the ExtORPort")
	}
	select {
	case err := <-done:
		t.Fatalf("dial returned without a handshake: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not unblock the dial")
	}
}

func TestCheckSrcAddrFamily(t *testing.T) {
	v4 := &pt.ServerInfo{OrAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9001}}
	v6ext := &pt.ServerInfo{
		OrAddr:         &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9001},
		ExtendedOrAddr: &net.TCPAddr{IP: net.ParseIP("::1"), Port: 9002},
		AuthCookiePath: "/x",
	}
	tests := []struct {
		src  string
		info *pt.ServerInfo
		ok   bool
	}{
		{"", v4, true},
		{"127.0.0.0/8", v4, true},
		{"::1/128", v4, false},
		{"::1/128", v6ext, true},
		{"127.0.0.1/32", v6ext, false},
	}
	for _, tt := range tests {
		var p netip.Prefix
		if tt.src != "" {
			p = netip.MustParsePrefix(tt.src)
		}
		err := CheckSrcAddrFamily(p, tt.info)
		if (err == nil) != tt.ok {
			t.Errorf("CheckSrcAddrFamily(%q) = %v, want ok=%v", tt.src, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "address families") {
			t.Errorf("unclear error: %v", err)
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func TestPipeHalfClose(t *testing.T) {
	// client <-> [c1 | pipe | o1] <-> tor
	client, c1 := tcpPair(t)
	o1, tor := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- Pipe(context.Background(), c1, o1) }()

	// The client sends and half-closes; tor sees the data then EOF, and
	// can still answer.
	client.Write([]byte("request"))
	client.CloseWrite()
	tor.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := io.ReadAll(tor)
	if err != nil || string(req) != "request" {
		t.Fatalf("tor read %q, %v", req, err)
	}
	tor.Write([]byte("response"))
	tor.CloseWrite()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := io.ReadAll(client)
	if err != nil || string(resp) != "response" {
		t.Fatalf("client read %q, %v", resp, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Pipe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return after both halves closed")
	}
}

func TestPipeContext(t *testing.T) {
	_, c1 := tcpPair(t)
	o1, _ := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Pipe(ctx, c1, o1) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Pipe = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return after ctx ended")
	}
}

func TestPipeReset(t *testing.T) {
	client, c1 := tcpPair(t)
	o1, tor := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- Pipe(context.Background(), c1, o1) }()
	// tor goes away abruptly: the client side must be closed too.
	tor.SetLinger(0)
	tor.Close()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client read: %v", err)
	}
	client.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return")
	}
}
