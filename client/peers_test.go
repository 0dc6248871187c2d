package client

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// addrPeers hands out pipe connections that report the proxy addresses of
// a script, one per Connect, the last repeating.
type addrPeers struct {
	mu     sync.Mutex
	script []netip.Addr
	n      int
	closed []netip.Addr // duplicates the pool closed, in order
}

type addrConn struct {
	net.Conn
	src  *addrPeers
	addr netip.Addr
	far  net.Conn
	once sync.Once
}

func (c *addrConn) ProxyAddr() netip.Addr { return c.addr }

func (c *addrConn) Close() error {
	c.once.Do(func() {
		c.src.mu.Lock()
		c.src.closed = append(c.src.closed, c.addr)
		c.src.mu.Unlock()
		c.far.Close()
	})
	return c.Conn.Close()
}

func (s *addrPeers) Connect(ctx context.Context) (net.Conn, error) {
	s.mu.Lock()
	a := s.script[min(s.n, len(s.script)-1)]
	s.n++
	s.mu.Unlock()
	near, far := net.Pipe()
	return &addrConn{Conn: near, src: s, addr: a, far: far}, nil
}

// collectAddrs runs a pool of max 2 over script until it holds two
// proxies, and returns the addresses delivered and those closed.
func collectAddrs(t *testing.T, script ...netip.Addr) (delivered, closed []netip.Addr) {
	src := &addrPeers{script: script}
	var mu sync.Mutex
	var conns []*peerConn
	p := newPool(src, 2, &trafficStats{}, slog.New(slog.DiscardHandler), func(pc *peerConn) {
		mu.Lock()
		conns = append(conns, pc)
		mu.Unlock()
	})
	for i := 0; ; i++ {
		synctest.Wait() // the collector is blocked: at capacity or backing off
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		if n == 2 {
			break
		}
		if i > 2*dupRetries {
			t.Fatalf("only %d proxies delivered after %d back-offs", n, i)
		}
		time.Sleep(retryMax) // simulated: longer than any back-off
	}
	p.close()
	for _, pc := range conns {
		delivered = append(delivered, pc.addr)
		pc.Close()
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	return delivered, src.closed[:len(src.closed)-len(conns)]
}

// TestPoolAvoidsSameProxy: with max=2, a new channel through the proxy of
// a live one is closed and another collected; after dupRetries such
// channels in a row the next duplicate is kept.
func TestPoolAvoidsSameProxy(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	synctest.Test(t, func(t *testing.T) {
		got, closed := collectAddrs(t, a, a, a, b)
		if len(got) != 2 || got[0] != a || got[1] != b {
			t.Errorf("delivered %v, want [%v %v]", got, a, b)
		}
		if len(closed) != 2 {
			t.Errorf("closed %v, want the two duplicates", closed)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		got, closed := collectAddrs(t, a)
		if len(got) != 2 || got[0] != a || got[1] != a {
			t.Errorf("delivered %v, want [%v %v] (the duplicate kept at last)", got, a, a)
		}
		if len(closed) != dupRetries {
			t.Errorf("closed %d duplicates, want %d", len(closed), dupRetries)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// Unknown addresses are never taken for duplicates.
		got, closed := collectAddrs(t, netip.Addr{})
		if len(got) != 2 || len(closed) != 0 {
			t.Errorf("delivered %v, closed %v; want 2 delivered, none closed", got, closed)
		}
	})
}
