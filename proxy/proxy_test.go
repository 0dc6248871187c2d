//go:build !js

// These tests talk HTTP to a fake broker (httptest), which only the
// native build has.

package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
)

// testOfferSDP is a client offer with one public candidate.
const testOfferSDP = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
	"a=candidate:1 1 udp 2130706431 10.0.0.5 5000 typ host\r\n" +
	"a=candidate:2 1 udp 1694498815 203.0.113.9 6000 typ srflx raddr 10.0.0.5 rport 5000\r\n" +
	"a=end-of-candidates\r\n"

func testOffer(t testing.TB) string {
	s, err := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeOffer, SDP: testOfferSDP})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeBroker is an httptest broker whose poll replies the test scripts.
type fakeBroker struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	polls   []*messages.ProxyPollRequest
	answers []*messages.ProxyAnswerRequest
	reply   func(n int) (status int, body string) // n counts polls from 1
}

func newFakeBroker(t testing.TB, reply func(n int) (int, string)) *fakeBroker {
	b := &fakeBroker{t: t, reply: reply}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *fakeBroker) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 100000))
	switch r.URL.Path {
	case "/proxy":
		req, err := messages.DecodeProxyPollRequest(body)
		if err != nil {
			b.t.Errorf("bad poll %s: %v", body, err)
			w.WriteHeader(400)
			return
		}
		b.mu.Lock()
		b.polls = append(b.polls, req)
		n := len(b.polls)
		b.mu.Unlock()
		status, reply := b.reply(n)
		w.WriteHeader(status)
		io.WriteString(w, reply)
	case "/answer":
		req, err := messages.DecodeProxyAnswerRequest(body)
		if err != nil {
			b.t.Errorf("bad answer %s: %v", body, err)
			w.WriteHeader(400)
			return
		}
		b.mu.Lock()
		b.answers = append(b.answers, req)
		b.mu.Unlock()
		io.WriteString(w, `{"Status":"success"}`)
	default:
		http.NotFound(w, r)
	}
}

func (b *fakeBroker) counts() (polls, answers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.polls), len(b.answers)
}

func matchReply(offer, relay string) string {
	r := messages.ProxyPollResponse{Status: messages.StatusMatch, Offer: offer, NAT: "unrestricted", RelayURL: relay}
	b, _ := r.Encode()
	return string(b)
}

const noMatchReply = `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`

// fakePeers is a PeerFactory whose data channels are net.Pipes.
type fakePeers struct {
	answerers atomic.Int32
	accepting chan struct{} // one send per Accept call
	opens     bool          // false: channels never open (Accept waits for ctx)
	clientEnd chan net.Conn // the client's end of each handed-out conn
	offers    chan string   // offers seen
}

func newFakePeers(openChannels bool) *fakePeers {
	f := &fakePeers{accepting: make(chan struct{}, 100), clientEnd: make(chan net.Conn, 100), offers: make(chan string, 100)}
	f.opens = openChannels
	return f
}

type fakeAnswerer struct {
	f      *fakePeers
	closed atomic.Bool
}

func (f *fakePeers) NewAnswerer(ctx context.Context, offer string) (Answerer, error) {
	f.answerers.Add(1)
	f.offers <- offer
	return &fakeAnswerer{f: f}, nil
}

func (f *fakePeers) NewOfferer(ctx context.Context, label string) (Offerer, error) {
	return nil, errors.New("no offerer in this fake")
}

func (a *fakeAnswerer) Answer() string {
	return "v=0\r\na=candidate:1 1 udp 1 192.168.1.2 9 typ host\r\na=candidate:2 1 udp 1 198.51.100.7 9 typ host\r\n" +
		"a=candidate:3 1 udp 1 203.0.113.9 4000 typ srflx raddr 192.168.1.2 rport 5000\r\n"
}

func (a *fakeAnswerer) Accept(ctx context.Context) (net.Conn, error) {
	a.f.accepting <- struct{}{}
	if !a.f.opens {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	proxyEnd, clientEnd := net.Pipe()
	a.f.clientEnd <- clientEnd
	return proxyEnd, nil
}

func (a *fakeAnswerer) Close() error { a.closed.Store(true); return nil }

// fakeDialer hands out pipes as relays and records the URLs dialled.
type fakeDialer struct {
	mu     sync.Mutex
	urls   []string
	checks []bool
	bridge chan net.Conn // the bridge's end
	err    error
}

func (d *fakeDialer) DialRelay(ctx context.Context, u *url.URL, check func(netip.Addr) error) (net.Conn, error) {
	d.mu.Lock()
	d.urls = append(d.urls, u.String())
	d.checks = append(d.checks, check != nil)
	d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	a, b := net.Pipe()
	d.bridge <- b
	return a, nil
}

// countObserver counts Observer calls.
type countObserver struct {
	mu         sync.Mutex
	polls      int
	started    []ConnInfo
	toC, fromC int64 // from BytesRelayed
	ended      []ConnInfo
	timeouts   int
	nat        []string
}

func (o *countObserver) PollSent() { o.mu.Lock(); o.polls++; o.mu.Unlock() }
func (o *countObserver) ConnectionStarted(ci ConnInfo) {
	o.mu.Lock()
	o.started = append(o.started, ci)
	o.mu.Unlock()
}
func (o *countObserver) BytesRelayed(to, from int) {
	o.mu.Lock()
	o.toC += int64(to)
	o.fromC += int64(from)
	o.mu.Unlock()
}

func (o *countObserver) ConnectionEnded(ci ConnInfo) {
	o.mu.Lock()
	o.ended = append(o.ended, ci)
	o.mu.Unlock()
}
func (o *countObserver) ConnectionTimedOut() { o.mu.Lock(); o.timeouts++; o.mu.Unlock() }
func (o *countObserver) NATTypeChanged(t string) {
	o.mu.Lock()
	o.nat = append(o.nat, t)
	o.mu.Unlock()
}

// logBuffer collects log lines safely.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func testConfig(b *fakeBroker, pf PeerFactory, d RelayDialer, log io.Writer) Config {
	return Config{
		BrokerURL:    b.srv.URL + "/",
		RelayURL:     "wss://relay.example/",
		Policy:       RelayPolicy{Pattern: "example$"},
		PeerFactory:  pf,
		RelayDialer:  d,
		Poster:       HTTPPoster(b.srv.Client()),
		ForceNATType: "unknown",
		Logger:       slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// runProxy starts p.Run and returns a function that stops it and waits.
func runProxy(t *testing.T, p *Proxy) func() {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCapacityUnderBurst(t *testing.T) {
	offer := testOffer(t)
	b := newFakeBroker(t, func(int) (int, string) { return 200, matchReply(offer, "") })
	pf := newFakePeers(false) // channels never open: every client holds its slot
	var logs logBuffer
	cfg := testConfig(b, pf, &fakeDialer{}, &logs)
	cfg.Capacity = 10
	cfg.DataChannelTimeout = time.Minute
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = time.Millisecond // a burst: the broker matches every poll at once
	p.minPoll = time.Millisecond
	stop := runProxy(t, p)
	for range 10 {
		select {
		case <-pf.accepting:
		case <-time.After(10 * time.Second):
			t.Fatal("clients not served")
		}
	}
	// Full: no more polls however long we wait.
	time.Sleep(300 * time.Millisecond)
	polls, answers := b.counts()
	if polls != 10 || answers != 10 || p.Clients() != 10 {
		t.Fatalf("at capacity 10: %d polls, %d answers, %d clients", polls, answers, p.Clients())
	}
	b.mu.Lock()
	for i, req := range b.polls {
		want := 0
		if i >= 8 {
			want = 8
		}
		if req.Clients != want {
			t.Errorf("poll %d reported Clients=%d, want %d (floored)", i+1, req.Clients, want)
		}
		if req.NAT != "unknown" || req.Type != "standalone" {
			t.Errorf("poll %d: NAT %q type %q", i+1, req.NAT, req.Type)
		}
	}
	seen := map[string]bool{}
	for _, a := range b.answers {
		if seen[a.Sid] {
			t.Errorf("sid %s reused", a.Sid)
		}
		seen[a.Sid] = true
		desc, err := sdpwire.Decode(a.Answer)
		if err != nil || desc.Type != sdpwire.TypeAnswer {
			t.Fatalf("answer %q: %v", a.Answer, err)
		}
		if strings.Contains(desc.SDP, "192.168.1.2") || !strings.Contains(desc.SDP, "198.51.100.7") {
			t.Errorf("local candidates not stripped (or public ones lost): %q", desc.SDP)
		}
		if !strings.Contains(desc.SDP, "203.0.113.9 4000 typ srflx raddr 0.0.0.0 rport 0") {
			t.Errorf("related address of the srflx candidate not hidden: %q", desc.SDP)
		}
	}
	b.mu.Unlock()
	stop()
	if p.Clients() != 0 {
		t.Fatalf("%d clients after stop", p.Clients())
	}
}

// backedOff waits for poll number after+2 and returns the gap between
// polls after+1 and after+2. Polls the policy would send 10 ms apart must
// come at least MinPollInterval apart once it backs off; a lower bound on
// a gap holds however slow the machine is.
func backedOff(t *testing.T, obs *pollTimes, after int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(4 * MinPollInterval)
	for {
		obs.mu.Lock()
		n := len(obs.at)
		var gap time.Duration
		if n >= after+2 {
			gap = obs.at[after+1].Sub(obs.at[after])
		}
		obs.mu.Unlock()
		if n >= after+2 {
			return gap
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d polls by %v: the proxy stopped polling", n, 4*MinPollInterval)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBrokerErrorBacksOff(t *testing.T) {
	b := newFakeBroker(t, func(int) (int, string) { return 500, "oops" })
	var logs logBuffer
	cfg := testConfig(b, newFakePeers(false), &fakeDialer{}, &logs)
	obs := &pollTimes{}
	cfg.Observer = obs
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond // would poll every 10 ms without back-off
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	gap := backedOff(t, obs, 0)
	stop()
	if gap < MinPollInterval {
		t.Fatalf("retry %v after a failed poll, want at least %v", gap, MinPollInterval)
	}
	if !strings.Contains(logs.String(), "broker poll failed; backing off") ||
		!strings.Contains(logs.String(), "consecutive_failures=1") {
		t.Fatalf("no clear log line:\n%s", logs.String())
	}
}

func TestDeadBrokerBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	var logs logBuffer
	cfg := testConfig(&fakeBroker{srv: &httptest.Server{URL: "http://" + addr}}, newFakePeers(false), &fakeDialer{}, &logs)
	cfg.Poster = nil
	obs := &pollTimes{}
	cfg.Observer = obs
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	gap := backedOff(t, obs, 0)
	stop()
	if gap < MinPollInterval {
		t.Fatalf("retry %v after a refused poll, want at least %v", gap, MinPollInterval)
	}
	if !strings.Contains(logs.String(), "broker poll failed") || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("log does not say why:\n%s", logs.String())
	}
}

func TestNextPollHonoured(t *testing.T) {
	b := newFakeBroker(t, func(int) (int, string) {
		return 200, `{"Status":"no match","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`
	})
	p, err := New(testConfig(b, newFakePeers(false), &fakeDialer{}, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = time.Millisecond // would spin if NextPoll were ignored
	p.minPoll = time.Millisecond
	stop := runProxy(t, p)
	time.Sleep(500 * time.Millisecond)
	stop()
	if polls, _ := b.counts(); polls != 1 {
		t.Fatalf("%d polls despite NextPoll of an hour", polls)
	}
}

func TestServeRelaysClient(t *testing.T) {
	offer := testOffer(t)
	var served atomic.Bool
	b := newFakeBroker(t, func(int) (int, string) {
		if served.CompareAndSwap(false, true) {
			return 200, matchReply(offer, "wss://bridge.example:8443/path?client_ip=6.6.6.6")
		}
		return 200, noMatchReply
	})
	pf := newFakePeers(true)
	d := &fakeDialer{bridge: make(chan net.Conn, 1)}
	obs := &countObserver{}
	cfg := testConfig(b, pf, d, io.Discard)
	cfg.Observer = obs
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	defer stop()

	// The client's private host candidate never reaches WebRTC: the proxy
	// would send it STUN.
	if got, want := <-pf.offers, strings.Replace(testOfferSDP, "a=candidate:1 1 udp 2130706431 10.0.0.5 5000 typ host\r\n", "", 1); got != want {
		t.Fatalf("factory got offer %q, want %q", got, want)
	}
	client := <-pf.clientEnd
	bridge := <-d.bridge
	go client.Write([]byte("from client"))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(bridge, buf); err != nil || string(buf) != "from client" {
		t.Fatalf("bridge read %q %v", buf, err)
	}
	go bridge.Write([]byte("to client!"))
	buf = make([]byte, 10)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "to client!" {
		t.Fatalf("client read %q %v", buf, err)
	}
	// The observer sees the connection and its bytes while it lasts.
	waitFor(t, "live events", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.started) == 1 && obs.toC == 10 && obs.fromC == 11
	})
	obs.mu.Lock()
	if len(obs.ended) != 0 || obs.started[0].ClientAddr != netip.MustParseAddr("203.0.113.9") || obs.polls < 1 {
		t.Errorf("before the end: %d ended, started %+v, %d polls", len(obs.ended), obs.started, obs.polls)
	}
	obs.mu.Unlock()
	bridge.Close()
	waitFor(t, "connection end", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.ended) == 1
	})
	d.mu.Lock()
	if len(d.urls) != 1 || d.urls[0] != "wss://bridge.example:8443/path?client_ip=203.0.113.9" || !d.checks[0] {
		t.Errorf("dialled %v (checked %v)", d.urls, d.checks)
	}
	d.mu.Unlock()
	ci := obs.ended[0]
	if ci.FromClient != 11 || ci.ToClient != 10 || ci.ClientAddr != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("observed %+v", ci)
	}
	if s := p.Stats(); s.Connections != 1 || s.FromClient != 11 || s.ToClient != 10 {
		t.Errorf("stats %+v", s)
	}
	if want := "In the last 1h0m0s, there were 1 connections. Traffic Relayed ↑ 0 KB, ↓ 0 KB."; summaryLine(time.Hour, p.Stats()) != want {
		t.Errorf("summary %q", summaryLine(time.Hour, p.Stats()))
	}
}

func TestDefaultRelayUsedAndTrusted(t *testing.T) {
	offer := testOffer(t)
	var served atomic.Bool
	b := newFakeBroker(t, func(int) (int, string) {
		if served.CompareAndSwap(false, true) {
			return 200, matchReply(offer, "")
		}
		return 200, noMatchReply
	})
	pf := newFakePeers(true)
	d := &fakeDialer{err: errors.New("relay down")}
	var logs logBuffer
	cfg := testConfig(b, pf, d, &logs)
	cfg.RelayURL = "ws://127.0.0.1:9/"
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	client := <-pf.clientEnd
	// The relay is down: the client is closed, with a clear log line.
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client not closed when the relay is down")
	}
	stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.urls) != 1 || !strings.HasPrefix(d.urls[0], "ws://127.0.0.1:9/?client_ip=") || d.checks[0] {
		t.Errorf("dialled %v checked %v", d.urls, d.checks)
	}
	if !strings.Contains(logs.String(), "consecutive_relay_failures=1") {
		t.Errorf("no log line for the dead relay:\n%s", logs.String())
	}
}

func TestRefusedRelayDropsOffer(t *testing.T) {
	offer := testOffer(t)
	for _, relayURL := range []string{
		"wss://evil.net/", "ws://relay.example/", "wss://10.0.0.1/", "wss://evilexample/", "https://relay.example/",
	} {
		t.Run(relayURL, func(t *testing.T) {
			var served atomic.Bool
			b := newFakeBroker(t, func(int) (int, string) {
				if served.CompareAndSwap(false, true) {
					return 200, matchReply(offer, relayURL)
				}
				return 200, noMatchReply
			})
			pf := newFakePeers(true)
			var logs logBuffer
			p, err := New(testConfig(b, pf, &fakeDialer{}, &logs))
			if err != nil {
				t.Fatal(err)
			}
			p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
			p.minPoll = 10 * time.Millisecond
			stop := runProxy(t, p)
			waitFor(t, "more polls", func() bool { n, _ := b.counts(); return n >= 3 })
			stop()
			if _, answers := b.counts(); answers != 0 || pf.answerers.Load() != 0 {
				t.Fatalf("answered a client of a refused relay (%d answers, %d peers)", answers, pf.answerers.Load())
			}
			if !strings.Contains(logs.String(), "relay refused by policy") {
				t.Errorf("no log line:\n%s", logs.String())
			}
		})
	}
}

func TestDataChannelTimeoutCounted(t *testing.T) {
	offer := testOffer(t)
	var served atomic.Bool
	b := newFakeBroker(t, func(int) (int, string) {
		if served.CompareAndSwap(false, true) {
			return 200, matchReply(offer, "")
		}
		return 200, noMatchReply
	})
	obs := &countObserver{}
	cfg := testConfig(b, newFakePeers(false), &fakeDialer{}, io.Discard)
	cfg.Observer = obs
	cfg.DataChannelTimeout = 50 * time.Millisecond
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	waitFor(t, "timeout", func() bool { obs.mu.Lock(); defer obs.mu.Unlock(); return obs.timeouts == 1 })
	stop()
	if s := p.Stats(); s.Timeouts != 1 || s.Connections != 0 {
		t.Errorf("stats %+v", s)
	}
}

// fakeOfferer lets the NAT probe test choose the outcome.
type fakeOfferPeers struct {
	open error
	fail error
}

type fakeOfferer struct{ open error }

func (f *fakeOfferPeers) NewAnswerer(context.Context, string) (Answerer, error) {
	return nil, errors.New("no")
}
func (f *fakeOfferPeers) NewOfferer(ctx context.Context, label string) (Offerer, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return &fakeOfferer{open: f.open}, nil
}
func (o *fakeOfferer) Offer() string {
	return "v=0\r\na=candidate:1 1 udp 1 192.0.2.1 9 typ srflx raddr 0.0.0.0 rport 0\r\n"
}
func (o *fakeOfferer) SetAnswer(string) error { return nil }
func (o *fakeOfferer) WaitOpen(ctx context.Context) error {
	return o.open
}
func (o *fakeOfferer) Close() error { return nil }

func TestProbeNATOutcomes(t *testing.T) {
	answer, _ := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeAnswer, SDP: "v=0\r\n"})
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		b, _ := (&messages.ProxyAnswerRequest{Sid: "stub-sid", Answer: answer}).Encode()
		w.Write(b)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name    string
		pf      *fakeOfferPeers
		want    string
		wantErr bool
	}{
		{"open", &fakeOfferPeers{}, "unrestricted", false},
		{"timeout", &fakeOfferPeers{open: context.DeadlineExceeded}, "restricted", false},
		{"ice failed", &fakeOfferPeers{open: ErrPeerFailed}, "restricted", false},
		{"no webrtc", &fakeOfferPeers{fail: errors.New("boom")}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ProbeNAT(t.Context(), tt.pf, HTTPPoster(srv.Client()), srv.URL+"/probe", time.Second, false)
			if (err != nil) != tt.wantErr || res.Type != tt.want {
				t.Fatalf("got %+v, %v", res, err)
			}
			if err == nil && !res.Reflexive {
				t.Error("srflx candidate not noticed")
			}
		})
	}
	msg, err := messages.DecodeProxyPollResponse(gotBody)
	if err != nil || msg.Status != messages.StatusMatch || msg.RelayURL != "" {
		t.Fatalf("probe request %s: %v", gotBody, err)
	}
	if !bytes.HasPrefix(gotBody, []byte(`{"Status":"client match","Offer":`)) {
		t.Errorf("probe request shape %s", gotBody)
	}
}

func TestProbeServiceDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := ProbeNAT(t.Context(), &fakeOfferPeers{}, HTTPPoster(srv.Client()), srv.URL, time.Second, false)
	if !errors.Is(err, ErrBrokerStatus) {
		t.Fatalf("err %v", err)
	}
}

func TestNextNATType(t *testing.T) {
	for _, tt := range []struct{ prev, got, want string }{
		{"unknown", "restricted", "restricted"},
		{"unrestricted", "unknown", "unrestricted"},
		{"restricted", "unknown", "restricted"},
		{"restricted", "unrestricted", "unrestricted"},
		{"unrestricted", "restricted", "restricted"},
		{"unknown", "unknown", "unknown"},
	} {
		if got := nextNATType(tt.prev, tt.got); got != tt.want {
			t.Errorf("nextNATType(%s, %s) = %s", tt.prev, tt.got, got)
		}
	}
}

func TestNATTypePersisted(t *testing.T) {
	st := &MemStore{}
	st.Set(StoreKeyNATType, "unrestricted")
	b := newFakeBroker(t, func(int) (int, string) { return 200, noMatchReply })
	cfg := testConfig(b, newFakePeers(false), &fakeDialer{}, io.Discard)
	cfg.ForceNATType = ""
	cfg.Store = st
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.NATType() != "unrestricted" {
		t.Fatalf("restored %q", p.NATType())
	}
	p.setNATType("restricted")
	if v, _ := st.Get(StoreKeyNATType); v != "restricted" {
		t.Fatalf("stored %q", v)
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{Capacity: -1},
		{BrokerURL: "ftp://x/"},
		{RelayURL: "https://x/"},
		{STUNURLs: []string{"turn:x"}},
		{ForceNATType: "open"},
		{BandwidthLimit: -1},
	}
	for i, c := range bad {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("config %d accepted: %+v", i, c)
		}
	}
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.BrokerURL != DefaultBrokerURL || c.RelayURL != DefaultRelayURL || c.Policy.Pattern != DefaultRelayPattern ||
		c.STUNURLs[0] != DefaultSTUNURL || c.PollInterval != 5*time.Second || c.NATProbeURL != DefaultNATProbeURL {
		t.Errorf("defaults %+v", c)
	}
	c, _ = Config{PollInterval: time.Millisecond}.withDefaults()
	if c.PollInterval != MinPollInterval {
		t.Errorf("poll interval not clamped: %v", c.PollInterval)
	}
}

func TestParsePortRange(t *testing.T) {
	for _, tt := range []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{
		{"10000:20000", 10000, 20000, true},
		{"5:5", 5, 5, true},
		{"0:10", 0, 0, false},
		{"10:0", 0, 0, false},
		{"20:10", 0, 0, false},
		{"10", 0, 0, false},
		{"a:b", 0, 0, false},
		{"1:70000", 0, 0, false},
		{"+1:2", 0, 0, false},
	} {
		lo, hi, err := ParsePortRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v", tt.in, lo, hi, err)
		}
	}
}

func TestDeadRelaySlowsPolling(t *testing.T) {
	offer := testOffer(t)
	b := newFakeBroker(t, func(int) (int, string) { return 200, matchReply(offer, "") })
	pf := newFakePeers(true)
	go func() { // clients hang up once served
		for c := range pf.clientEnd {
			c.Close()
		}
	}()
	var logs logBuffer
	cfg := testConfig(b, pf, &fakeDialer{err: errors.New("connection refused")}, &logs)
	obs := &pollTimes{}
	cfg.Observer = obs
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Polls would come every 10 ms; once a relay dial has failed they
	// come after the back-off instead (at least MinPollInterval).
	p.policy.(*standalonePolicy).interval = 10 * time.Millisecond
	p.minPoll = 10 * time.Millisecond
	stop := runProxy(t, p)
	waitFor(t, "a failed relay dial", func() bool { return strings.Contains(logs.String(), "consecutive_relay_failures=1") })
	// Every poll sent from now on was sent after the failure was counted,
	// so the wait after it is a back-off.
	obs.mu.Lock()
	after := len(obs.at)
	obs.mu.Unlock()
	gap := backedOff(t, obs, after)
	stop()
	close(pf.clientEnd)
	if gap < MinPollInterval {
		t.Fatalf("poll %v after the previous one with a dead relay, want at least %v", gap, MinPollInterval)
	}
}

// eagerPolicy wants a poll at every moment.
type eagerPolicy struct{ standalonePolicy }

func (*eagerPolicy) Delay(time.Time) time.Duration { return 0 }

// pollTimes records when polls go out.
type pollTimes struct {
	NopObserver
	mu sync.Mutex
	at []time.Time
}

func (o *pollTimes) PollSent() { o.mu.Lock(); o.at = append(o.at, time.Now()); o.mu.Unlock() }

// TestPollFloorWhateverThePolicy: a policy that always says "now" still
// gets polls at least MinPollInterval apart.
func TestPollFloorWhateverThePolicy(t *testing.T) {
	b := newFakeBroker(t, func(int) (int, string) { return 200, noMatchReply })
	cfg := testConfig(b, newFakePeers(false), &fakeDialer{}, io.Discard)
	cfg.PollPolicy = &eagerPolicy{}
	obs := &pollTimes{}
	cfg.Observer = obs
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runProxy(t, p)
	waitFor(t, "three polls", func() bool { obs.mu.Lock(); defer obs.mu.Unlock(); return len(obs.at) >= 3 })
	stop()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for i := 1; i < len(obs.at); i++ {
		if gap := obs.at[i].Sub(obs.at[i-1]); gap < MinPollInterval {
			t.Errorf("poll %d went out %v after the previous one, want at least %v", i+1, gap, MinPollInterval)
		}
	}
}

// TestKeepLocalAddressesKeepsClientCandidates: with local addresses
// allowed (test networks), the client's offer reaches WebRTC whole.
func TestKeepLocalAddressesKeepsClientCandidates(t *testing.T) {
	offer := testOffer(t)
	var served atomic.Bool
	b := newFakeBroker(t, func(int) (int, string) {
		if served.CompareAndSwap(false, true) {
			return 200, matchReply(offer, "")
		}
		return 200, noMatchReply
	})
	pf := newFakePeers(false)
	cfg := testConfig(b, pf, &fakeDialer{err: errors.New("unused")}, io.Discard)
	cfg.KeepLocalAddresses = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runProxy(t, p)
	defer stop()
	if got := <-pf.offers; got != testOfferSDP {
		t.Fatalf("factory got offer %q, want it unchanged", got)
	}
}
