package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/client/internal/fakebridge"
	"github.com/snowfall-pt/snowfall/client/internal/socks5test"
	"github.com/snowfall-pt/snowfall/client/internal/stuntest"
	"github.com/snowfall-pt/snowfall/client/webrtcpeer"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpjson"
)

// loopProxy is a rendezvous.Method that plays both broker and proxy: it
// answers the client's offer with an in-process pion peer and relays the
// data channel to a fake bridge.
type loopProxy struct {
	t      *testing.T
	bridge *fakebridge.Bridge
	api    *webrtc.API
	mode   string // "", "no-candidates", "never-open", "garbage", "broker-error"

	mu     sync.Mutex
	pcs    []*webrtc.PeerConnection
	labels []string
	polls  []*messages.ClientPollRequest
}

func newLoopProxy(t *testing.T, bridge *fakebridge.Bridge, mode string) *loopProxy {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	p := &loopProxy{t: t, bridge: bridge, api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), mode: mode}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pc := range p.pcs {
			pc.Close()
		}
	})
	return p
}

func (p *loopProxy) Exchange(ctx context.Context, poll []byte) ([]byte, error) {
	req, err := messages.DecodeClientPollRequest(poll)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.polls = append(p.polls, req)
	p.mu.Unlock()
	switch p.mode {
	case "garbage":
		return []byte("<html>not json</html>"), nil
	case "broker-error":
		return (&messages.ClientPollResponse{Error: messages.StrNoProxies}).Encode()
	}
	offer, err := sdpjson.Decode(req.Offer)
	if err != nil {
		return nil, err
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.pcs = append(p.pcs, pc)
	p.mu.Unlock()
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		p.mu.Lock()
		p.labels = append(p.labels, dc.Label())
		p.mu.Unlock()
		dc.OnOpen(func() {
			rwc, err := dc.Detach()
			if err != nil {
				p.t.Error(err)
				return
			}
			go func() {
				p.bridge.ServeCarrier(&rwcConn{rwc: rwc, buf: make([]byte, 65536)})
				pc.Close()
			}()
		})
	})
	if err := pc.SetRemoteDescription(*offer); err != nil {
		return nil, err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, err
	}
	<-gathered
	local := *pc.LocalDescription()
	switch p.mode {
	case "no-candidates":
		var keep []string
		for _, l := range strings.Split(local.SDP, "\r\n") {
			if !strings.HasPrefix(l, "a=candidate") {
				keep = append(keep, l)
			}
		}
		local.SDP = strings.Join(keep, "\r\n")
	case "never-open":
		pc.Close()
	}
	a, err := sdpjson.Encode(&local)
	if err != nil {
		return nil, err
	}
	return (&messages.ClientPollResponse{Answer: a}).Encode()
}

// closeAll closes every proxy peer connection, like proxies dying.
func (p *loopProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.pcs {
		pc.Close()
	}
}

// rwcConn adapts a detached data channel to net.Conn for the fake bridge.
type rwcConn struct {
	rwc     datachannel.ReadWriteCloser
	buf     []byte
	pending []byte
}

func (c *rwcConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		n, err := c.rwc.Read(c.buf)
		if err != nil {
			return 0, err
		}
		c.pending = c.buf[:n]
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
func (c *rwcConn) Write(b []byte) (int, error)      { return c.rwc.Write(b) }
func (c *rwcConn) Close() error                     { return c.rwc.Close() }
func (c *rwcConn) LocalAddr() net.Addr              { return nil }
func (c *rwcConn) RemoteAddr() net.Addr             { return nil }
func (c *rwcConn) SetDeadline(time.Time) error      { return nil }
func (c *rwcConn) SetReadDeadline(time.Time) error  { return nil }
func (c *rwcConn) SetWriteDeadline(time.Time) error { return nil }

func loopConfig(p *loopProxy) Config {
	return Config{
		Rendezvous:                p,
		NAT:                       StaticNAT("restricted"),
		KeepLocalAddresses:        true,
		IncludeLoopbackCandidates: true,
		BridgeFingerprint:         "8838024498816A039FCBBAB14E6F40A0843051FA",
		DataChannelTimeout:        5 * time.Second,
	}
}

// TestWebRTCLoopback runs the whole client stack over real pion data
// channels to an in-process proxy and bridge.
func TestWebRTCLoopback(t *testing.T) {
	bridge := echoBridge(t)
	proxy := newLoopProxy(t, bridge, "")
	var mu sync.Mutex
	var events []string
	cfg := loopConfig(proxy)
	cfg.MaxPeers = 2
	cfg.OnEvent = func(e Event) {
		mu.Lock()
		events = append(events, e.String())
		mu.Unlock()
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	transfer(t, conn, 4<<20, func(done int) {
		// Kill every proxy once, half way: the session must survive on a
		// newly collected one.
		if !killed && done > 2<<20 {
			killed = true
			proxy.closeAll()
		}
	})
	conn.Close()

	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.labels) == 0 {
		t.Fatal("no data channel reached the proxy")
	}
	for _, l := range proxy.labels {
		if len(l) != len("snowflake-")+16 || !strings.HasPrefix(l, "snowflake-") {
			t.Errorf("label %q", l)
		}
	}
	for _, poll := range proxy.polls {
		if poll.NAT != "restricted" || poll.Fingerprint != "8838024498816A039FCBBAB14E6F40A0843051FA" {
			t.Errorf("poll NAT %q fingerprint %q", poll.NAT, poll.Fingerprint)
		}
		if strings.Contains(poll.Offer, "a=candidate") && !strings.Contains(poll.Offer, "end-of-candidates") {
			t.Errorf("offer without end-of-candidates (trickle?)")
		}
		if strings.Contains(poll.Offer, ".local") {
			t.Errorf("offer has mDNS candidates")
		}
	}
	if len(bridge.Clients()) != 1 {
		t.Errorf("%d ClientIDs", len(bridge.Clients()))
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(events, "|")
	for _, want := range []string{"offer created", "broker rendezvous peer received", "connected", "switched to another proxy"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %q event in %v", want, events)
		}
	}
}

func TestWebRTCBadProxies(t *testing.T) {
	tests := []struct {
		mode string
		want error
	}{
		{"no-candidates", webrtcpeer.ErrNoCandidates},
		{"garbage", ErrBadReply},
		{"broker-error", ErrNoProxies},
		{"never-open", nil}, // ICE failure or data channel timeout
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			proxy := newLoopProxy(t, echoBridge(t), tt.mode)
			cfg := loopConfig(proxy)
			cfg.ConnectTimeout = 8 * time.Second
			cfg.DataChannelTimeout = 2 * time.Second
			var mu sync.Mutex
			var failures []error
			cfg.OnEvent = func(e Event) {
				if e.Err != nil {
					mu.Lock()
					failures = append(failures, e.Err)
					mu.Unlock()
				}
			}
			tr, err := NewTransport(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			done := make(chan error, 1)
			go func() {
				c, err := tr.Dial(context.Background())
				if c != nil {
					c.Close()
				}
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("Dial hung")
			}
			if !errors.Is(err, ErrNoProxy) {
				t.Fatalf("err = %v, want ErrNoProxy", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(failures) == 0 {
				t.Error("no failure events")
			}
			proxy.mu.Lock()
			defer proxy.mu.Unlock()
			if len(proxy.polls) < 2 {
				t.Errorf("%d rendezvous attempts, want retries", len(proxy.polls))
			}
		})
	}
}

var _ io.ReadWriteCloser = (*rwcConn)(nil)

// TestWebRTCThroughSOCKS5 sends all of WebRTC's UDP through a SOCKS5 proxy
// (UDP ASSOCIATE), as with TOR_PT_PROXY: the offer carries only the
// proxy's server-reflexive address, and the session still works.
func TestWebRTCThroughSOCKS5(t *testing.T) {
	socks, err := socks5test.Start("user", "pass")
	if err != nil {
		t.Fatal(err)
	}
	defer socks.Close()
	stunSrv, err := stuntest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stunSrv.Close()

	bridge := echoBridge(t)
	proxy := newLoopProxy(t, bridge, "")
	cfg := loopConfig(proxy)
	cfg.ICEServers = []string{stunSrv.URL()}
	cfg.ProxyURL = &url.URL{Scheme: "socks5", Host: socks.Addr(), User: url.UserPassword("user", "pass")}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, 1<<20, nil)
	conn.Close()

	if socks.Datagrams.Load() == 0 {
		t.Error("no datagram went through the SOCKS5 proxy")
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	offer := proxy.polls[0].Offer
	if strings.Contains(offer, "typ host") || !strings.Contains(offer, "typ srflx") {
		t.Errorf("offer through a proxy should carry only server-reflexive candidates:\n%s", offer)
	}
	// The related address of a server-reflexive candidate is the local
	// socket's: it must be hidden as browsers hide it.
	if n, hidden := strings.Count(offer, " raddr "), strings.Count(offer, " raddr 0.0.0.0 rport 0"); n == 0 || n != hidden {
		t.Errorf("offer has %d related addresses, %d of them hidden:\n%s", n, hidden, offer)
	}
}
