//go:build !js

// Some of these tests dial real WebSockets (wsDialer), native only.

package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

func TestWithClientIP(t *testing.T) {
	for _, tt := range []struct {
		relay string
		addr  string
		want  string
	}{
		{"wss://r.example/", "1.2.3.4", "wss://r.example/?client_ip=1.2.3.4"},
		{"wss://r.example/", "2001:db8::1", "wss://r.example/?client_ip=2001%3Adb8%3A%3A1"},
		{"wss://r.example/?client_ip=6.6.6.6&a=b", "1.2.3.4", "wss://r.example/?a=b&client_ip=1.2.3.4"},
		{"wss://r.example/?client_ip=6.6.6.6", "", "wss://r.example/"},
		{"wss://r.example/p", "::ffff:1.2.3.4", "wss://r.example/p?client_ip=1.2.3.4"},
	} {
		u, _ := url.Parse(tt.relay)
		a, err := netip.ParseAddr(tt.addr)
		got := withClientIP(u, a, err == nil).String()
		if got != tt.want {
			t.Errorf("withClientIP(%s, %s) = %s, want %s", tt.relay, tt.addr, got, tt.want)
		}
		if u.String() != tt.relay {
			t.Errorf("input URL modified: %s", u)
		}
	}
}

func TestRelayCopiesBothWays(t *testing.T) {
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	var st relayStats
	done := make(chan error, 1)
	go func() { done <- relay(t.Context(), clientProxy, bridgeProxy, time.Minute, nil, &st, nil) }()

	up := make([]byte, 100000)
	down := make([]byte, 70000)
	rand.Read(up)
	rand.Read(down)
	go func() {
		clientSide.Write(up)
	}()
	got := make([]byte, len(up))
	if _, err := io.ReadFull(bridgeSide, got); err != nil || !bytes.Equal(got, up) {
		t.Fatalf("upstream bytes differ (%v)", err)
	}
	go func() {
		bridgeSide.Write(down)
	}()
	got = make([]byte, len(down))
	if _, err := io.ReadFull(clientSide, got); err != nil || !bytes.Equal(got, down) {
		t.Fatalf("downstream bytes differ (%v)", err)
	}
	// Closing one side ends the relay and closes the other.
	bridgeSide.Close()
	if err := <-done; err != nil {
		t.Fatalf("relay ended with %v", err)
	}
	if _, err := clientSide.Read(make([]byte, 1)); err == nil {
		t.Fatal("client side still open after the bridge closed")
	}
	if st.fromClient.Load() != int64(len(up)) || st.toClient.Load() != int64(len(down)) {
		t.Fatalf("counted %d/%d, want %d/%d", st.fromClient.Load(), st.toClient.Load(), len(up), len(down))
	}
}

func TestRelayInactivity(t *testing.T) {
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	defer clientSide.Close()
	defer bridgeSide.Close()
	// The client keeps sending, the relay never answers: the connection is
	// closed for inactivity anyway, because only relay bytes count.
	go func() {
		for {
			if _, err := clientSide.Write([]byte("ping")); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go io.Copy(io.Discard, bridgeSide)
	var st relayStats
	done := make(chan error, 1)
	go func() { done <- relay(t.Context(), clientProxy, bridgeProxy, 100*time.Millisecond, nil, &st, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, errInactive) {
			t.Fatalf("relay ended with %v, want errInactive", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("inactive relay not closed")
	}
}

func TestRelayActiveRelayStaysOpen(t *testing.T) {
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	go io.Copy(io.Discard, clientSide)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				bridgeSide.Close()
				return
			default:
			}
			bridgeSide.Write([]byte("data"))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var st relayStats
	done := make(chan error, 1)
	// Writes come every 10 ms against a 1 s inactivity timeout: only a
	// stall of a whole second (100 writes) could close it, not a slow or
	// loaded machine (200 ms failed under the race detector on 2 busy
	// cores). Watched for 2.5 timeouts.
	go func() { done <- relay(t.Context(), clientProxy, bridgeProxy, time.Second, nil, &st, nil) }()
	time.Sleep(2500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("relay closed while the relay was sending: %v", err)
	default:
	}
	close(stop)
	if err := <-done; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("relay ended with %v", err)
	}
}

func TestNewLimiter(t *testing.T) {
	if newLimiter(0) != nil || newLimiter(-5) != nil {
		t.Fatal("no limit should be nil")
	}
	for _, bps := range []int64{1, 1000, relayBufSize, 1 << 40} {
		l := newLimiter(bps)
		if l.Burst() < relayBufSize {
			t.Errorf("limit %d: burst %d below one read", bps, l.Burst())
		}
	}
}

func TestRelayWithLimiter(t *testing.T) {
	// With a limit, bytes still arrive intact (the limiter only delays).
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	var st relayStats
	done := make(chan error, 1)
	go func() {
		done <- relay(t.Context(), clientProxy, bridgeProxy, time.Minute, newLimiter(10_000_000), &st, nil)
	}()
	data := make([]byte, 200000)
	rand.Read(data)
	go clientSide.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(bridgeSide, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("bytes differ through limiter: %v", err)
	}
	clientSide.Close()
	<-done
}

// TestRelayOverWebSocket relays through a real WebSocket to an echo
// server and checks the hash of what comes back.
func TestRelayOverWebSocket(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("client_ip") != "1.2.3.4" {
			http.Error(w, "no client_ip", http.StatusBadRequest)
			return
		}
		c, err := websocketconn.Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}))
	defer srv.Close()
	u, _ := url.Parse("ws" + strings.TrimPrefix(srv.URL, "http") + "/")
	u = withClientIP(u, netip.MustParseAddr("1.2.3.4"), true)
	policy := RelayPolicy{AllowPrivate: true}
	bridge, err := wsDialer{}.DialRelay(t.Context(), u, policy.CheckAddr)
	if err != nil {
		t.Fatal(err)
	}
	clientSide, clientProxy := net.Pipe()
	var st relayStats
	done := make(chan error, 1)
	go func() { done <- relay(t.Context(), clientProxy, bridge, time.Minute, nil, &st, nil) }()

	data := make([]byte, 1<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	go func() {
		for p := data; len(p) > 0; {
			n := min(len(p), 1400)
			if _, err := clientSide.Write(p[:n]); err != nil {
				return
			}
			p = p[n:]
		}
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, clientSide, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed bytes differ")
	}
	clientSide.Close()
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	if st.fromClient.Load() != int64(len(data)) || st.toClient.Load() != int64(len(data)) {
		t.Fatalf("counted %d/%d", st.fromClient.Load(), st.toClient.Load())
	}
}

// TestDialRefusesPrivateResolvedAddress: a hostname that passes the
// pattern but resolves to loopback is refused at connect time.
func TestDialRefusesPrivateResolvedAddress(t *testing.T) {
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	policy := RelayPolicy{Pattern: "^localhost$", AllowNonTLS: true}
	u, err := policy.Check("ws://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("the URL itself should pass: %v", err)
	}
	_, err = wsDialer{}.DialRelay(t.Context(), u, policy.CheckAddr)
	if !errors.Is(err, ErrRelayAddress) {
		t.Fatalf("dial of a name resolving to loopback: %v, want ErrRelayAddress", err)
	}
	select {
	case <-reached:
		t.Fatal("the server was reached")
	default:
	}
}

// TestDialRefusesRedirect: a relay that redirects the handshake, here from
// an allowed name to another server, is not followed.
func TestDialRefusesRedirect(t *testing.T) {
	reached := make(chan struct{}, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		if c, err := websocketconn.Accept(w, r); err == nil {
			c.Close()
		}
	}))
	defer target.Close()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/", code)
		}))
		u, _ := url.Parse("ws" + strings.TrimPrefix(redirector.URL, "http") + "/")
		policy := RelayPolicy{AllowPrivate: true}
		conn, err := wsDialer{}.DialRelay(t.Context(), u, policy.CheckAddr)
		redirector.Close()
		if err == nil {
			conn.Close()
			t.Fatalf("%d: a redirected relay dial succeeded", code)
		}
		if !errors.Is(err, errRelayRedirect) {
			t.Errorf("%d: err %v, want errRelayRedirect", code, err)
		}
		select {
		case <-reached:
			t.Fatalf("%d: the redirect target was reached", code)
		default:
		}
	}
}
