package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

// kcpSegment encodes one KCP segment (PROTOCOL.md §6.3).
func kcpSegment(cmd byte, sn uint32, data []byte) []byte {
	b := make([]byte, 24, 24+len(data))
	binary.LittleEndian.PutUint32(b[0:], 0) // conv
	b[4] = cmd
	binary.LittleEndian.PutUint16(b[6:], 65535) // wnd
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(data)))
	return append(b, data...)
}

const (
	kcpPush = 81
	kcpAck  = 82
)

// fromSource returns an HTTP client whose connections come from ip, a
// loopback address other than 127.0.0.1, so that per-source limits on the
// attacker do not apply to it.
func fromSource(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// The bridge's KCP receive window is Config.KCPWindow, not 65535: out of
// order segments beyond it are not held.
func TestKCPWindowAdvertised(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, KCPWindow: 128})
	c := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	// An out-of-order segment; the bridge acknowledges it, telling its
	// window.
	pkt, _ := encapsulation.AppendData(nil, kcpSegment(kcpPush, 5, []byte{1}))
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	buf := make([]byte, 2048)
	for {
		n, err := encapsulation.ReadData(r, buf)
		if err != nil {
			t.Fatalf("no ACK from the bridge: %v", err)
		}
		if n >= 24 && buf[4] == kcpAck {
			if wnd := binary.LittleEndian.Uint16(buf[6:]); wnd > 128 {
				t.Fatalf("bridge advertises a window of %d, want at most 128", wnd)
			}
			return
		}
	}
}

// New ClientIDs beyond the per-source limit are refused; other sources
// still get sessions.
func TestSessionLimitPerSource(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, MaxSessionsPerSource: 3})
	for range 3 {
		b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	}
	waitFor(t, "3 admitted sessions", func() bool { n, _ := b.srv.Sessions(); return n == 3 })
	extra := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	if !closedWithin(extra, 20*time.Second) {
		t.Fatal("fourth session from one source accepted")
	}
	if len(b.logs.lines("max-sessions-per-source")) == 0 {
		t.Error("limit not logged")
	}
	tc := newTestClientHTTP(t, b.url(""), fromSource("127.0.0.2"))
	if err := tc.echoTransfer(t, 10000, nil); err != nil {
		t.Fatalf("client from another source: %v", err)
	}
}

// The total session limit holds across sources, and a session's slot
// comes back when its WebSockets have gone and no KCP session started.
func TestSessionLimitTotal(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, MaxSessions: 2})
	b.srv.sessions.linger = 100 * time.Millisecond
	first := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	waitFor(t, "2 admitted sessions", func() bool { n, _ := b.srv.Sessions(); return n == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := websocketconn.Dial(ctx, b.url(""), fromSource("127.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(prologue(turbotunnel.NewClientID()))
	if !closedWithin(c, 20*time.Second) {
		t.Fatal("third session accepted")
	}
	first.Close()
	waitFor(t, "a session slot to free", func() bool { n, _ := b.srv.Sessions(); return n == 1 })
	tc := newTestClient(t, b.url(""))
	if err := tc.echoTransfer(t, 10000, nil); err != nil {
		t.Fatal(err)
	}
}

// A KCP session that never delivers an smux frame is closed after
// FirstFrameTimeout, not minutes later by smux's keep-alive.
func TestSessionWithoutSmuxReaped(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, FirstFrameTimeout: 500 * time.Millisecond})
	b.srv.sessions.linger = 100 * time.Millisecond
	for range 5 {
		c := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
		// Segment 3 only: KCP opens a session, smux never gets a byte.
		pkt, _ := encapsulation.AppendData(nil, kcpSegment(kcpPush, 3, []byte("x")))
		c.Write(pkt)
		defer c.Close()
	}
	waitFor(t, "5 KCP sessions", func() bool { _, n := b.srv.Sessions(); return n == 5 })
	waitFor(t, "the sessions to be reaped", func() bool { _, n := b.srv.Sessions(); return n == 0 })
	if len(b.logs.lines("first-frame-timeout")) == 0 {
		t.Error("reaping not logged")
	}
}

// Streams beyond MaxStreamsPerSession are closed at once, without a
// connection to tor; the ones within it work.
func TestStreamsPerSession(t *testing.T) {
	const limit = 4
	b := startBridge(t, Config{StatsInterval: -1, MaxStreamsPerSession: limit})
	tc := newTestClient(t, b.url(""))
	var streams []net.Conn
	for range 3 * limit {
		s, err := tc.sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Write([]byte("hello"))
		streams = append(streams, s)
	}
	echoed := 0
	for _, s := range streams {
		s.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 5)
		if n, _ := s.Read(buf); n == 5 {
			echoed++
		}
	}
	if echoed != limit {
		t.Fatalf("%d streams echoed, want %d", echoed, limit)
	}
	if n := len(b.tor.seen); n != limit {
		t.Fatalf("%d connections to tor, want %d", n, limit)
	}
	if len(b.logs.lines("max-streams-per-session")) == 0 {
		t.Error("limit not logged")
	}
}

// The prologue has a deadline of its own, shorter than the idle timeout.
func TestPrologueDeadline(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, PrologueTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})
	c := b.dialRaw(t, "", turbotunnel.Token[:4])
	if !closedWithin(c, 20*time.Second) {
		t.Fatal("WebSocket without a prologue kept open")
	}
}

// Padding does not count as activity: trickling it holds no slot.
func TestPaddingDoesNotHoldSlot(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, IdleTimeout: 500 * time.Millisecond})
	c := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := encapsulation.WritePadding(c, 1); err != nil {
					return
				}
			}
		}
	}()
	if !closedWithin(c, 20*time.Second) {
		t.Fatal("WebSocket trickling padding kept open")
	}
}

// When the slots are full of connections without a prologue, a new
// connection evicts one and a client gets through.
func TestEvictionWhenFull(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, MaxWebSockets: 3})
	var idle []net.Conn
	for range 3 {
		idle = append(idle, b.dialRaw(t, "", nil))
	}
	waitFor(t, "3 WebSockets", func() bool { return b.srv.ActiveWebSockets() == 3 })
	tc := newTestClient(t, b.url(""))
	if err := tc.echoTransfer(t, 10000, nil); err != nil {
		t.Fatalf("client with the slots full of idle connections: %v", err)
	}
	if !closedWithin(idle[0], 20*time.Second) {
		t.Error("oldest pre-prologue connection not evicted")
	}
	if b.srv.ActiveWebSockets() > 3 {
		t.Errorf("%d WebSockets open, limit 3", b.srv.ActiveWebSockets())
	}
}

// One source cannot hold more than MaxWebSocketsPerSource slots.
func TestWebSocketsPerSource(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, MaxWebSocketsPerSource: 2})
	b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	waitFor(t, "2 WebSockets", func() bool { return b.srv.ActiveWebSockets() == 2 })
	waitFor(t, "2 prologues", func() bool { n, _ := b.srv.Sessions(); return n == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := websocketconn.Dial(ctx, b.url(""), nil); err == nil {
		c.Close()
		t.Fatal("third WebSocket from one source accepted")
	}
	tc := newTestClientHTTP(t, b.url(""), fromSource("127.0.0.4"))
	if err := tc.echoTransfer(t, 10000, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:443", "192.0.2.1/32"},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1/32"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
	} {
		if got := sourceKey(tt.in); got != netip.MustParsePrefix(tt.want) {
			t.Errorf("sourceKey(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if sourceKey("garbage").IsValid() {
		t.Error("sourceKey of garbage is valid")
	}
}
