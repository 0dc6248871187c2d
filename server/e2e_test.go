package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
	"github.com/snowfall-pt/snowfall/internal/safelog"
)

// logBuffer collects a test server's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing s.
func (b *logBuffer) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// waitFor polls cond until it holds or the (generous) limit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testBridge struct {
	srv    *Server
	addr   string // host:port of the WebSocket listener
	scheme string // ws or wss
	logs   *logBuffer
	tor    *fakeExtORPort
}

// startBridge runs a Server on 127.0.0.1 whose streams go, through the
// ExtORPort protocol, to an echo server.
func startBridge(t *testing.T, cfg Config) *testBridge {
	t.Helper()
	logs := &logBuffer{}
	logger := safelog.NewLogger(logs, slog.LevelDebug, false)
	srv, err := NewServer(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	tor := newFakeExtORPort(t)
	go tor.echo()
	fw := &Forwarder{Dialer: &ORDialer{Info: tor.info(), Transport: "snowflake"}, Logger: logger}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fw.Serve(ctx, ctx, srv)
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		wg.Wait()
	})
	scheme := "ws"
	if cfg.TLSConfig != nil {
		scheme = "wss"
	}
	return &testBridge{srv: srv, addr: ln.Addr().String(), scheme: scheme, logs: logs, tor: tor}
}

// echo echoes every authenticated connection, then half-closes it. Each
// session is also passed to seen, if there is room.
func (f *fakeExtORPort) echo() {
	for s := range f.sessions {
		select {
		case f.seen <- s:
		default:
		}
		if s.conn == nil {
			continue
		}
		go func() {
			defer s.conn.Close()
			io.Copy(s.conn, s.conn)
			s.conn.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, s.conn)
		}()
	}
}

func (b *testBridge) url(clientIP string) string {
	u := b.scheme + "://" + b.addr + "/some/path"
	if clientIP != "" {
		u += "?client_ip=" + url.QueryEscape(clientIP)
	}
	return u
}

// dialRaw opens a WebSocket to the bridge and writes prologue, if any.
func (b *testBridge) dialRaw(t *testing.T, clientIP string, prologue []byte) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := websocketconn.Dial(ctx, b.url(clientIP), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(prologue) > 0 {
		if _, err := c.Write(prologue); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func prologue(id turbotunnel.ClientID) []byte {
	return append(turbotunnel.Token[:], id[:]...)
}

// bridgeAddr is what the client's packet conn reports as its peer.
type bridgeAddr struct{}

func (bridgeAddr) Network() string { return "bridge" }
func (bridgeAddr) String() string  { return "bridge" }

// testClient is a turbotunnel client as PROTOCOL.md §6.5 describes one: a
// client session over a CarrierConn, with a WebSocket as carrier; when the
// test drops it, the client dials another, as it moves to a new proxy.
type testClient struct {
	id   turbotunnel.ClientID
	sess *smux.Session
	dial func() (net.Conn, error)
	t    *testing.T

	mu      sync.Mutex
	pconn   *turbotunnel.CarrierConn
	current net.Conn
	dials   int
}

func newTestClient(t *testing.T, url string) *testClient {
	return newTestClientHTTP(t, url, nil)
}

func newTestClientHTTP(t *testing.T, url string, httpClient *http.Client) *testClient {
	t.Helper()
	tc := &testClient{id: turbotunnel.NewClientID(), t: t}
	tc.dial = func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return websocketconn.Dial(ctx, url, httpClient)
	}
	tc.pconn = turbotunnel.NewCarrierConn(tc.id, bridgeAddr{}, turbotunnel.CarrierOptions{})
	if err := tc.addCarrier(); err != nil {
		tc.pconn.Close()
		t.Fatal(err)
	}
	sess, err := turbotunnel.NewClientSession(tc.pconn, bridgeAddr{}, turbotunnel.ClientConfig())
	if err != nil {
		tc.pconn.Close()
		t.Fatal(err)
	}
	tc.sess = sess.Mux
	t.Cleanup(func() {
		sess.Close()
		tc.pconn.Close()
	})
	return tc
}

// addCarrier dials a WebSocket and attaches it to the session.
func (tc *testClient) addCarrier() error {
	c, err := tc.dial()
	if err != nil {
		return err
	}
	tc.mu.Lock()
	tc.current = c
	tc.dials++
	tc.mu.Unlock()
	return tc.pconn.Add(c)
}

// dropCarrier closes the carrier in use, as when its proxy goes away, and
// attaches a new one.
func (tc *testClient) dropCarrier() {
	tc.mu.Lock()
	old := tc.current
	tc.mu.Unlock()
	old.Close()
	if err := tc.addCarrier(); err != nil {
		tc.t.Errorf("dialling a new carrier: %v", err)
	}
}

func (tc *testClient) numDials() int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.dials
}

// echoTransfer sends n random bytes on a new stream, half-closes, and
// checks that exactly the same bytes come back. progress, if not nil, is
// called with the number of bytes received so far.
func (tc *testClient) echoTransfer(t *testing.T, n int, progress func(int)) error {
	stream, err := tc.sess.OpenStream()
	if err != nil {
		return err
	}
	defer stream.Close()
	stream.SetDeadline(time.Now().Add(3 * time.Minute))
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(n), tc.id[0]})
	rng.Read(data)
	want := sha256.Sum256(data)

	werr := make(chan error, 1)
	go func() {
		_, err := stream.Write(data)
		if err == nil {
			err = stream.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	buf := make([]byte, 32<<10)
	got := 0
	for {
		m, err := stream.Read(buf)
		h.Write(buf[:m])
		got += m
		if progress != nil && m > 0 {
			progress(got)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if got != n {
		return fmt.Errorf("echoed %d bytes, want %d", got, n)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return errors.New("echoed data differs")
	}
	return nil
}

func TestEndToEnd(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1})
	tc := newTestClient(t, b.url("2001:db8::5"))
	if err := tc.echoTransfer(t, 10<<20, nil); err != nil {
		t.Fatal(err)
	}
	// The Tor connection was credited to the client_ip the proxy sent.
	s := <-b.tor.seen
	if s.userAddr != "[2001:db8::5]:1" || s.transport != "snowflake" {
		t.Errorf("ExtORPort got USERADDR %q TRANSPORT %q", s.userAddr, s.transport)
	}
	if got := b.srv.stats.withAddr.Load(); got != 1 {
		t.Errorf("streams with a client address = %d, want 1", got)
	}
}

func TestProxySwitch(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1})
	tc := newTestClient(t, b.url("192.0.2.9"))
	const n = 10 << 20
	var once sync.Once
	err := tc.echoTransfer(t, n, func(got int) {
		if got > n/3 {
			// The proxy goes away mid-transfer; the client moves to
			// another and the session carries on.
			once.Do(tc.dropCarrier)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := tc.numDials(); d < 2 {
		t.Fatalf("client dialled %d carrier(s); the test did not switch proxies", d)
	}
	// A new stream on the same session still works.
	if err := tc.echoTransfer(t, 64<<10, nil); err != nil {
		t.Fatalf("after the switch: %v", err)
	}
}

func TestManyClientsAndEngines(t *testing.T) {
	b := startBridge(t, Config{NumTurbotunnel: 3, StatsInterval: -1})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		tc := newTestClient(t, b.url(fmt.Sprintf("192.0.2.%d", i+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tc.echoTransfer(t, 256<<10, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// closedWithin reports whether the server closes c within d, reading and
// discarding whatever it sends meanwhile.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, context.DeadlineExceeded)
}

func TestBadInputIsolated(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1})
	good := newTestClient(t, b.url("192.0.2.1"))
	done := make(chan error, 1)
	go func() { done <- good.echoTransfer(t, 4<<20, nil) }()
	// The subtests count WebSockets; let the good client's be counted.
	waitFor(t, "the good client's WebSocket", func() bool { return b.srv.ActiveWebSockets() == 1 })

	badToken := append([]byte{}, turbotunnel.Token[:]...)
	badToken[0] ^= 0xff
	oversized := append(prologue(turbotunnel.NewClientID()), 0xc0|byte((MaxChunkLen+1)>>7), byte((MaxChunkLen+1)&0x7f))
	oversized = append(oversized, make([]byte, MaxChunkLen+1)...)
	tests := []struct {
		name         string
		input        []byte
		clientCloses bool   // the client goes away after sending input
		log          string // expected in an Info line; "" for a silent close
	}{
		{"wrong token", append(badToken, make([]byte, 8)...), false, "turbotunnel: wrong token"},
		{"not a token", []byte("GET / HTTP/1.1\r\n\r\n"), false, "turbotunnel: wrong token"},
		{"truncated prologue", turbotunnel.Token[:5], true, "truncated prologue"},
		{"truncated client ID", append(turbotunnel.Token[:], 1, 2, 3), true, "truncated prologue"},
		{"oversized chunk", oversized, false, "chunk longer than"},
		{"malformed chunk", append(prologue(turbotunnel.NewClientID()), 0xc0, 0x80, 0x80, 0x01), false, "malformed chunk"},
		{"no prologue", nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infoBefore := len(b.logs.lines("level=INFO"))
			wsBefore := b.srv.ActiveWebSockets()
			c := b.dialRaw(t, "192.0.2.77", tt.input)
			if tt.clientCloses {
				c.Close()
			} else if !closedWithin(c, 20*time.Second) {
				t.Fatal("server did not close the connection")
			}
			waitFor(t, "the server to drop the WebSocket", func() bool { return b.srv.ActiveWebSockets() <= wsBefore })
			if tt.log == "" {
				if l := b.logs.lines("level=INFO"); len(l) != infoBefore {
					t.Errorf("silent close logged: %q", l[infoBefore:])
				}
				return
			}
			lines := b.logs.lines(tt.log)
			if len(lines) == 0 {
				t.Fatalf("no log line with %q in:\n%s", tt.log, b.logs)
			}
			for _, l := range lines {
				if strings.Contains(l, "127.0.0.1") || strings.Contains(l, "192.0.2.77") || !strings.Contains(l, safelog.Replacement) {
					t.Errorf("log line not scrubbed: %q", l)
				}
			}
		})
	}
	if err := <-done; err != nil {
		t.Fatalf("well-behaved client disturbed: %v", err)
	}
}

func TestNeverReadingClientIsClosed(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	b := startBridge(t, Config{StatsInterval: -1, WriteTimeout: writeTimeout})
	id := turbotunnel.NewClientID()
	c := b.dialRaw(t, "", prologue(id)) // and never read from it
	waitFor(t, "the WebSocket to be served", func() bool { return b.srv.ActiveWebSockets() == 1 })
	pconn := b.srv.instances[instanceIndex(id, len(b.srv.instances))].pconn

	// Feed the client far more than socket buffers hold, as KCP would.
	pkt := make([]byte, turbotunnel.MaxPacketSize)
	start := time.Now()
	for i := 0; i < 200000 && b.srv.ActiveWebSockets() > 0; i++ {
		pconn.WriteTo(pkt, id)
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, "the server to close the WebSocket", func() bool { return b.srv.ActiveWebSockets() == 0 })
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
	// The client sees the connection gone once it does read.
	if !closedWithin(c, 20*time.Second) {
		t.Fatal("connection still open")
	}
}

func TestWebSocketLimit(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, MaxWebSockets: 3})
	var conns []net.Conn
	for range 3 {
		conns = append(conns, b.dialRaw(t, "", prologue(turbotunnel.NewClientID())))
	}
	waitFor(t, "3 WebSockets", func() bool { return b.srv.ActiveWebSockets() == 3 })
	// Until their prologues are in, they could be evicted to make room.
	waitFor(t, "3 prologues", func() bool { n, _ := b.srv.Sessions(); return n == 3 })
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := websocketconn.Dial(ctx, b.url(""), nil)
		cancel()
		if err == nil {
			c.Close()
			t.Fatal("WebSocket beyond the limit was accepted")
		}
	}
	// Plain HTTP shows the status.
	resp, err := http.Get("http://" + b.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status beyond the limit = %d, want 503", resp.StatusCode)
	}
	// Room frees up when one closes.
	conns[0].Close()
	waitFor(t, "a slot to free", func() bool { return b.srv.ActiveWebSockets() == 2 })
	b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
}

func TestIdleWebSocketClosed(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1, IdleTimeout: 300 * time.Millisecond})
	before := b.dialRaw(t, "", nil)
	after := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	for _, c := range []net.Conn{before, after} {
		if !closedWithin(c, 20*time.Second) {
			t.Fatal("idle WebSocket not closed")
		}
	}
}

func TestServerClose(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: -1})
	tc := newTestClient(t, b.url(""))
	if err := tc.echoTransfer(t, 1000, nil); err != nil {
		t.Fatal(err)
	}
	raw := b.dialRaw(t, "", prologue(turbotunnel.NewClientID()))
	b.srv.Close()
	if !closedWithin(raw, 20*time.Second) {
		t.Fatal("WebSocket open after Close")
	}
	if _, err := b.srv.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close = %v, want ErrClosed", err)
	}
}

func TestStatsLogged(t *testing.T) {
	b := startBridge(t, Config{StatsInterval: 200 * time.Millisecond})
	tc := newTestClient(t, b.url("192.0.2.3"))
	if err := tc.echoTransfer(t, 1000, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stats line", func() bool {
		return len(b.logs.lines("1/1 connections had client_ip")) > 0
	})
}

func TestTLS(t *testing.T) {
	certFile, keyFile, cert := writeCert(t, t.TempDir(), "bridge.example")
	cf, err := LoadCertFiles(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, Config{StatsInterval: -1, TLSConfig: cf.TLSConfig()})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tc := newTestClientHTTP(t, b.url("192.0.2.4"), httpClient)
	if err := tc.echoTransfer(t, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	// Plain ws:// to a TLS listener fails.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := websocketconn.Dial(ctx, "ws://"+b.addr+"/", nil); err == nil {
		c.Close()
		t.Fatal("plain WebSocket accepted on a TLS listener")
	}
}
