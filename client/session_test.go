package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/client/internal/fakebridge"
)

// fakePeers hands out in-memory proxies: each Connect returns one end of a
// net.Pipe whose other end the fake bridge serves.
type fakePeers struct {
	bridge   *fakebridge.Bridge
	mu       sync.Mutex
	carriers []*fakeCarrier
	connects atomic.Int64
	fail     func(n int64) error // when set and non-nil for the n-th call, Connect fails
}

// fakeCarrier is the bridge side of a fake proxy; it notes whether the
// client used it.
type fakeCarrier struct {
	net.Conn
	read   atomic.Int64
	closed atomic.Bool
}

func (c *fakeCarrier) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *fakeCarrier) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (f *fakePeers) Connect(ctx context.Context) (net.Conn, error) {
	n := f.connects.Add(1)
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return nil, err
		}
	}
	client, server := net.Pipe()
	fc := &fakeCarrier{Conn: server}
	f.mu.Lock()
	f.carriers = append(f.carriers, fc)
	f.mu.Unlock()
	go f.bridge.ServeCarrier(fc)
	return client, nil
}

// killActive closes the carriers the client is sending on, like a proxy
// process dying. It returns how many it closed.
func (f *fakePeers) killActive() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.carriers {
		if c.read.Load() > 0 && !c.closed.Load() {
			c.Close()
			n++
		}
	}
	return n
}

func (f *fakePeers) allClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.carriers {
		if c.closed.Load() {
			continue
		}
		// The bridge side sees EOF once the client side is closed.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return false
		}
	}
	return true
}

func echoBridge(t *testing.T) *fakebridge.Bridge {
	b, err := fakebridge.Start(func(c net.Conn) {
		io.Copy(c, c)
		c.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// transfer writes size random bytes to conn and reads back the echo,
// calling during(fraction) as the read progresses; it checks the hashes.
func transfer(t *testing.T, conn net.Conn, size int, during func(done int)) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		werr <- err
	}()
	h := sha256.New()
	buf := make([]byte, 32<<10)
	got := 0
	conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
	for got < size {
		n, err := conn.Read(buf)
		h.Write(buf[:n])
		got += n
		if during != nil && n > 0 {
			during(got)
		}
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", got, size, err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed data differ from sent data")
	}
}

func TestDialEcho(t *testing.T) {
	peers := &fakePeers{bridge: echoBridge(t)}
	tr, err := NewTransport(Config{Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, 3<<20, nil)
	conn.Close()
	if !peers.allClosed() {
		t.Error("closing the conn left proxies open")
	}
}

// TestDialSharesSession: parallel Dials on one Transport ride one session
// (one ClientID, one proxy), each stream carrying its own bytes; a Dial
// while the session is up opens without a new proxy; closing the last
// stream ends the session.
func TestDialSharesSession(t *testing.T) {
	bridge := echoBridge(t)
	peers := &fakePeers{bridge: bridge}
	tr, err := NewTransport(Config{Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const n = 10
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range conns {
		wg.Go(func() {
			c, err := tr.Dial(context.Background())
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Parallel subtests of a group: the group returns when all are done.
	t.Run("streams", func(t *testing.T) {
		for i, c := range conns {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				transfer(t, c, 256<<10+i, nil)
			})
		}
	})
	if got := len(bridge.Clients()); got != 1 {
		t.Fatalf("bridge saw %d ClientIDs for %d Dials, want 1", got, n)
	}
	before := peers.connects.Load()
	extra, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, extra, 1000, nil)
	if got := peers.connects.Load(); got != before {
		t.Errorf("a Dial on a live session connected %d more proxies", got-before)
	}
	extra.Close()
	for _, c := range conns {
		c.Close()
	}
	if !peers.allClosed() {
		t.Error("closing every stream left proxies open")
	}
	// The next Dial starts a new session.
	c, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, c, 1000, nil)
	c.Close()
	if got := len(bridge.Clients()); got != 2 {
		t.Errorf("bridge saw %d ClientIDs after a second session, want 2", got)
	}
}

// TestTransportSetKeys: connections with the same settings share a
// Transport; any bridge-line difference gives another.
func TestTransportSetKeys(t *testing.T) {
	var set TransportSet
	defer set.Close()
	base := Config{BrokerURL: "https://broker.example/", NAT: StaticNAT("unknown")}
	a, err := set.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := set.Get(base.Clone())
	if a != b {
		t.Error("identical settings got two Transports")
	}
	for _, args := range []map[string][]string{
		{"max": {"2"}},
		{"url": {"https://other.example/"}},
		{"fingerprint": {"8838024498816A039FCBBAB14E6F40A0843051FA"}},
		{"ice": {"stun:stun.example:3478"}},
		{"front": {"front.example"}},
	} {
		cfg, err := base.WithArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		c, err := set.Get(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c == a {
			t.Errorf("arguments %v shared the base Transport", args)
		}
	}
	if _, err := set.Get(Config{}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("bad config: %v", err)
	}
}

// TestFailover kills the carrying proxy three times during a transfer; the
// session must move on without losing a byte, keeping one ClientID.
func TestFailover(t *testing.T) {
	for _, max := range []int{1, 3} {
		t.Run("max="+string(rune('0'+max)), func(t *testing.T) {
			bridge := echoBridge(t)
			peers := &fakePeers{bridge: bridge}
			var switches atomic.Int64
			tr, err := NewTransport(Config{Peers: peers, MaxPeers: max, OnEvent: func(e Event) {
				if e.Kind == EventProxySwitched {
					switches.Add(1)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			conn, err := tr.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const size = 8 << 20
			kills := 0
			transfer(t, conn, size, func(done int) {
				if kills < 3 && done > (kills+1)*size/4 {
					if peers.killActive() > 0 {
						kills++
					}
				}
			})
			if kills != 3 {
				t.Fatalf("killed %d proxies, want 3", kills)
			}
			if switches.Load() < 3 {
				t.Errorf("%d proxy switches, want at least 3", switches.Load())
			}
			clients := bridge.Clients()
			if len(clients) != 1 {
				t.Fatalf("bridge saw %d ClientIDs, want 1", len(clients))
			}
			for _, n := range clients {
				if n < 4 {
					t.Errorf("ClientID used %d carriers, want at least 4", n)
				}
			}
			if got := peers.connects.Load(); got > 20 {
				t.Errorf("%d proxies collected for 3 failures", got)
			}
		})
	}
}

func TestDialRetriesThenFails(t *testing.T) {
	peers := &fakePeers{bridge: echoBridge(t), fail: func(n int64) error {
		if n < 3 {
			return &BrokerError{Msg: "no snowflake proxies currently available"}
		}
		return nil
	}}
	tr, err := NewTransport(Config{Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial after 2 failures: %v", err)
	}
	transfer(t, conn, 1000, nil)
	conn.Close()
	if peers.connects.Load() < 3 {
		t.Errorf("%d attempts", peers.connects.Load())
	}

	always := &fakePeers{bridge: echoBridge(t), fail: func(int64) error { return ErrNoProxies }}
	tr, _ = NewTransport(Config{Peers: always, ConnectTimeout: 3 * time.Second})
	_, err = tr.Dial(context.Background())
	if !errors.Is(err, ErrNoProxy) || !errors.Is(err, ErrNoProxies) {
		t.Fatalf("err = %v, want ErrNoProxy wrapping the broker's reason", err)
	}

	// A fatal error (a configuration error) is not retried.
	perm := &fakePeers{bridge: echoBridge(t), fail: func(int64) error {
		return &BrokerError{Msg: "bridge with requested fingerprint is unknown to the broker"}
	}}
	tr, _ = NewTransport(Config{Peers: perm, ConnectTimeout: time.Hour})
	done := make(chan error, 1)
	go func() { _, err := tr.Dial(context.Background()); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBridgeUnknown) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Dial kept retrying a fatal error")
	}
	if n := perm.connects.Load(); n != 1 {
		t.Errorf("%d attempts for a fatal error, want 1", n)
	}
}

func TestDialCancel(t *testing.T) {
	block := &fakePeers{bridge: echoBridge(t), fail: func(int64) error { return ErrNoProxies }}
	tr, _ := NewTransport(Config{Peers: block})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := tr.Dial(ctx); done <- err }()
	// Cancel while Dial is backing off after its first failure.
	waitFor(t, time.Minute, "first attempt", func() bool { return block.connects.Load() > 0 })
	// ErrNoProxies is retried until ConnectTimeout (90 s): Dial must
	// still be blocked, so that only the cancel can end it.
	select {
	case err := <-done:
		t.Fatalf("Dial returned before the cancel: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("cancel did not stop Dial")
	}
}

func TestNewTransportBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{BrokerURL: "not a url"},
		{BrokerURL: "https://b/", AMPCacheURL: "::"},
		{BrokerURL: "https://b/", UTLSImitate: "nope"},
		{BrokerURL: "https://b/", BridgeFingerprint: "00"},
		// An AMP cache cannot carry a broker on a non-default port.
		{BrokerURL: "https://b.example:8443/", AMPCacheURL: "https://cdn.ampproject.org/"},
	} {
		if _, err := NewTransport(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%+v: err = %v", cfg, err)
		}
	}
}

// BenchmarkSessionEcho measures a session over in-memory proxies: what the
// client adds per byte (KCP, smux, encapsulation, pool accounting).
func BenchmarkSessionEcho(b *testing.B) {
	bridge, err := fakebridge.Start(func(c net.Conn) { io.Copy(c, c); c.Close() })
	if err != nil {
		b.Fatal(err)
	}
	defer bridge.Close()
	tr, err := NewTransport(Config{Peers: &fakePeers{bridge: bridge}})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := tr.Dial(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	const chunk = 64 << 10
	out, in := make([]byte, chunk), make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		go conn.Write(out)
		if _, err := io.ReadFull(conn, in); err != nil {
			b.Fatal(err)
		}
	}
}
