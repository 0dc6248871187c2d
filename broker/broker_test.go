package broker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/broker/bridgelist"
	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
	"github.com/snowfall-pt/snowfall/common/messages"
)

const (
	testPattern = "snowflake.torproject.net$"
	// The smallest descriptions the broker's sanity checks accept.
	testOffer  = `{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:uf\r\na=ice-pwd:pw\r\n"}`
	testAnswer = `{"type":"answer","sdp":"v=0\r\na=fingerprint:sha-256 AB:CD\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:uf\r\na=ice-pwd:pw\r\na=candidate:1 1 udp 1 192.0.2.1 9 typ host\r\n"}`
	fp2        = "8838024498816A039FCBBAB14E6F40A0843051FA"
	relay2     = "wss://02.snowflake.torproject.net/"
)

// testConfig returns a config with short hold times.
func testConfig() Config {
	list, err := bridgelist.Parse(strings.NewReader(
		`{"displayName":"default","webSocketAddress":"wss://snowflake.torproject.net/","fingerprint":"` + bridgefingerprint.Default + `"}
{"displayName":"two","webSocketAddress":"` + relay2 + `","fingerprint":"` + fp2 + `"}`))
	if err != nil {
		panic(err)
	}
	return Config{
		Bridges:             list,
		AllowedRelayPattern: testPattern,
		ProxyTimeout:        2 * time.Second,
		ClientTimeout:       2 * time.Second,
		// Tests send everything from one address; limits_test.go turns
		// the rate limits on.
		ClientRate: -1,
		ProxyRate:  -1,
	}
}

func newTestBroker(t testing.TB, cfg Config) (*Broker, http.Handler) {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, b.Handler()
}

type result struct {
	code int
	body string
	hdr  http.Header
}

func do(h http.Handler, method, path, body string, hdr ...string) result {
	return doCtx(context.Background(), h, method, path, body, hdr...)
}

func doCtx(ctx context.Context, h http.Handler, method, path, body string, hdr ...string) result {
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return result{rec.Code, rec.Body.String(), rec.Header()}
}

func proxyPoll(sid, nat string, clients int, pattern *string) string {
	b, _ := (&messages.ProxyPollRequest{Sid: sid, Type: "standalone", NAT: nat, Clients: clients, AcceptedRelayPattern: pattern}).Encode()
	return string(b)
}

func pat(s string) *string { return &s }

func clientPoll(offer, nat, fp string) string {
	b, _ := (&messages.ClientPollRequest{Offer: offer, NAT: nat, Fingerprint: fp}).Encode()
	return string(b)
}

func answerBody(sid, answer string) string {
	b, _ := (&messages.ProxyAnswerRequest{Sid: sid, Answer: answer}).Encode()
	return string(b)
}

// waitWaiting waits until the pools hold n proxies in total.
func waitWaiting(t testing.TB, b *Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, r := b.Waiting()
		if u+r == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting proxies: %d+%d, want %d", u, r, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// startPoll runs a proxy poll in the background.
func startPoll(h http.Handler, body string) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- do(h, "POST", "/proxy", body) }()
	return ch
}

func TestRobots(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	r := do(h, "GET", "/robots.txt", "")
	if r.code != 200 || r.body != "User-agent: *\nDisallow: /\n" || r.hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("%+v", r)
	}
}

func TestCORSAndOptions(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	for _, p := range []string{"/client", "/amp/client/0x/abc", "/proxy", "/answer", "/debug", "/metrics"} {
		r := do(h, "OPTIONS", p, "")
		if r.code != 200 || r.body != "" {
			t.Errorf("OPTIONS %s: %d %q", p, r.code, r.body)
		}
		if r.hdr.Get("Access-Control-Allow-Origin") != "*" || r.hdr.Get("Access-Control-Allow-Headers") != "Origin, X-Session-ID" {
			t.Errorf("OPTIONS %s: headers %v", p, r.hdr)
		}
	}
	// Ordinary replies carry them too.
	r := do(h, "POST", "/answer", "garbage")
	if r.hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS on an error reply: %v", r.hdr)
	}
	// A bare /amp/client is redirected to the subtree, like the reference.
	if r := do(h, "GET", "/amp/client", ""); r.code/100 != 3 || r.hdr.Get("Location") != "/amp/client/" {
		t.Errorf("/amp/client: %d %v", r.code, r.hdr)
	}
}

func TestClientNoProxies(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	for _, nat := range []string{"unknown", "restricted", "unrestricted"} {
		r := do(h, "POST", "/client", clientPoll(testOffer, nat, ""))
		if r.code != 200 || r.body != `{"error":"no snowflake proxies currently available"}` {
			t.Errorf("%s: %d %q", nat, r.code, r.body)
		}
		if r.hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("content type %q", r.hdr.Get("Content-Type"))
		}
	}
}

func TestClientDecodeErrors(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	for _, tc := range []struct{ body, want string }{
		{"", `{"error":"unsupported message version"}`},
		{"1.1\n{}", `{"error":"unsupported message version"}`},
		{"no newline", `{"error":"unsupported message version"}`},
		{"1.0\n{}", `{"error":"no supplied offer"}`},
		{"1.0\n{\"offer\":\"x\",\"fingerprint\":\"abc\"}", `{"error":"cannot decode fingerprint"}`},
		{"1.0\n{\"offer\":\"x\",\"nat\":\"cone\"}", `{"error":"invalid NAT type"}`},
		{"1.0\n{\"offer\":", `{"error":"unexpected end of JSON input"}`},
	} {
		r := do(h, "POST", "/client", tc.body)
		if r.code != 200 || r.body != tc.want {
			t.Errorf("%q: %d %q, want %q", tc.body, r.code, r.body, tc.want)
		}
	}
}

func TestClientUnknownBridge(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	r := do(h, "POST", "/client", clientPoll(testOffer, "unknown", strings.Repeat("AB", 20)))
	if r.code != 500 || r.body != "" {
		t.Fatalf("%d %q", r.code, r.body)
	}
	// Legacy clients ask for the default bridge; without it in the list
	// they get 500 too.
	cfg := testConfig()
	cfg.Bridges, _ = bridgelist.Parse(strings.NewReader(`{"displayName":"two","webSocketAddress":"` + relay2 + `","fingerprint":"` + fp2 + `"}`))
	_, h = newTestBroker(t, cfg)
	if r := do(h, "POST", "/client", testOffer); r.code != 500 {
		t.Fatalf("legacy: %d %q", r.code, r.body)
	}
}

func TestOversizeBodies(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	big := "1.0\n" + strings.Repeat(" ", MaxBodySize)
	for _, p := range []string{"/client", "/proxy", "/answer"} {
		r := do(h, "POST", p, big)
		if r.code != 400 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
	// Exactly the limit is fine.
	body := "1.0\n" + strings.Repeat(" ", MaxBodySize-4)
	if r := do(h, "POST", "/client", body); r.code != 200 {
		t.Errorf("at the limit: %d", r.code)
	}
}

func TestProxyBadRequests(t *testing.T) {
	b, h := newTestBroker(t, testConfig())
	for _, body := range []string{
		"",
		"{",
		"[]",
		`{"Sid":"a","Version":"2.0","NAT":"unknown","AcceptedRelayPattern":"snowflake.torproject.net$"}`,
		`{"Sid":"a","Version":"","AcceptedRelayPattern":"snowflake.torproject.net$"}`,
		`{"Sid":"","Version":"1.3","AcceptedRelayPattern":"snowflake.torproject.net$"}`,
		`{"Sid":"a","Version":"1.3","NAT":"cone","AcceptedRelayPattern":"snowflake.torproject.net$"}`,
		`{"Sid":"a","Version":"1.3","Clients":"x"}`,
	} {
		if r := do(h, "POST", "/proxy", body); r.code != 400 || r.body != "" {
			t.Errorf("%q: %d %q", body, r.code, r.body)
		}
	}
	for _, body := range []string{"", "{", `{"Version":"1.3","Answer":"x"}`, `{"Version":"1.3","Sid":"a"}`, `{"Version":"0.9","Sid":"a","Answer":"x"}`} {
		if r := do(h, "POST", "/answer", body); r.code != 400 {
			t.Errorf("answer %q: %d %q", body, r.code, r.body)
		}
	}
	if u, r := b.Waiting(); u+r != 0 {
		t.Fatalf("bad polls were queued: %d %d", u, r)
	}
}

func TestRelayPattern(t *testing.T) {
	for _, tc := range []struct {
		name, allowed, deflt string
		proxy                *string
		ok                   bool
	}{
		{"same", testPattern, "", pat(testPattern), true},
		{"broader proxy", testPattern, "", pat("torproject.net$"), true},
		{"any", testPattern, "", pat(""), true},
		{"narrower proxy", testPattern, "", pat("^snowflake.torproject.net$"), false},
		{"other domain", testPattern, "", pat("example.com$"), false},
		{"legacy rejected", testPattern, "", nil, false},
		{"legacy with default", testPattern, "torproject.net$", nil, true},
		{"legacy with narrow default", testPattern, "^a.snowflake.torproject.net", nil, false},
		{"empty allowed pattern needs any-relay proxies", "", "", pat(testPattern), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AllowedRelayPattern = tc.allowed
			cfg.DefaultRelayPattern = tc.deflt
			cfg.ProxyTimeout = 50 * time.Millisecond
			b, h := newTestBroker(t, cfg)
			r := do(h, "POST", "/proxy", proxyPoll("sid", "unknown", 0, tc.proxy))
			want := `{"Status":"no match","Offer":"","NAT":"","NextPoll":20000,"RelayURL":""}`
			if !tc.ok {
				want = `{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`
			}
			if r.code != 200 || r.body != want {
				t.Fatalf("%d %q, want %q", r.code, r.body, want)
			}
			with, without, rejected := b.metrics.pollWithRelay.Load(), b.metrics.pollWithoutRelay.Load(), b.metrics.pollRejected.Load()
			if (tc.proxy != nil) != (with == 1) || (tc.proxy == nil) != (without == 1) || tc.ok != (rejected == 0) {
				t.Errorf("counters with=%d without=%d rejected=%d", with, without, rejected)
			}
		})
	}
}

func TestBridgeOutsidePattern(t *testing.T) {
	cfg := testConfig()
	cfg.AllowedRelayPattern = "^snowflake.torproject.net$"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "02.snowflake.torproject.net") {
		t.Fatalf("bridge outside the pattern accepted: %v", err)
	}
	cfg.Bridges = nil // the default bridge matches
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestProxyNoMatchAndNextPoll(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 20 * time.Millisecond
	cfg.PollIntervalUnrestricted = 7 * time.Second
	cfg.PollIntervalRestricted = -1
	b, h := newTestBroker(t, cfg)
	r := do(h, "POST", "/proxy", proxyPoll("s1", "unrestricted", 0, pat(testPattern)))
	if r.code != 200 || r.body != `{"Status":"no match","Offer":"","NAT":"","NextPoll":7000,"RelayURL":""}` {
		t.Fatalf("%d %q", r.code, r.body)
	}
	r = do(h, "POST", "/proxy", proxyPoll("s2", "restricted", 0, pat(testPattern)))
	if r.body != `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}` {
		t.Fatalf("without NextPoll: %q", r.body)
	}
	b.SetPollIntervals(time.Second, 2*time.Second)
	r = do(h, "POST", "/proxy", proxyPoll("s3", "", 0, pat(testPattern)))
	if r.body != `{"Status":"no match","Offer":"","NAT":"","NextPoll":2000,"RelayURL":""}` {
		t.Fatalf("after SetPollIntervals: %q", r.body)
	}
	waitWaiting(t, b, 0)
	if n := b.metrics.proxyIdle.Load(); n != 3 {
		t.Errorf("idle count %d", n)
	}
}

// TestRendezvous runs the whole exchange through the handlers.
func TestRendezvous(t *testing.T) {
	for _, tc := range []struct {
		name, fp, relay, proxyNAT, clientNAT string
	}{
		{"default bridge", "", "wss://snowflake.torproject.net/", "unrestricted", "restricted"},
		{"second bridge", fp2, relay2, "unrestricted", "unknown"},
		{"lowercase fingerprint", strings.ToLower(fp2), relay2, "restricted", "unrestricted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, h := newTestBroker(t, testConfig())
			pr := startPoll(h, proxyPoll("sid1", tc.proxyNAT, 0, pat(testPattern)))
			waitWaiting(t, b, 1)
			cr := make(chan result, 1)
			go func() { cr <- do(h, "POST", "/client", clientPoll(testOffer, tc.clientNAT, tc.fp)) }()
			p := <-pr
			want, _ := (&messages.ProxyPollResponse{Status: "client match", Offer: testOffer, NAT: tc.clientNAT, NextPoll: 20000, RelayURL: tc.relay}).Encode()
			if p.code != 200 || p.body != string(want) {
				t.Fatalf("proxy got %d %q, want %q", p.code, p.body, want)
			}
			a := do(h, "POST", "/answer", answerBody("sid1", testAnswer))
			if a.code != 200 || a.body != `{"Status":"success"}` {
				t.Fatalf("answer: %d %q", a.code, a.body)
			}
			c := <-cr
			wantC, _ := (&messages.ClientPollResponse{Answer: testAnswer}).Encode()
			if c.code != 200 || c.body != string(wantC) {
				t.Fatalf("client got %d %q", c.code, c.body)
			}
			// The session is over: a repeated answer finds nobody.
			a = do(h, "POST", "/answer", answerBody("sid1", testAnswer))
			if a.code != 200 || a.body != `{"Status":"client gone"}` {
				t.Fatalf("second answer: %d %q", a.code, a.body)
			}
			if b.metrics.clientMatch.Load() != 1 {
				t.Error("match not counted")
			}
		})
	}
}

func TestAnswerUnknownSid(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	r := do(h, "POST", "/answer", answerBody("nobody", testAnswer))
	if r.code != 200 || r.body != `{"Status":"client gone"}` {
		t.Fatalf("%d %q", r.code, r.body)
	}
	// A Sid that is only waiting (not matched) has no client either.
	cfg := testConfig()
	cfg.ProxyTimeout = time.Second
	b, h := newTestBroker(t, cfg)
	pr := startPoll(h, proxyPoll("waiting", "unknown", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	r = do(h, "POST", "/answer", answerBody("waiting", testAnswer))
	if r.body != `{"Status":"client gone"}` {
		t.Fatalf("%q", r.body)
	}
	b.Close()
	<-pr
}

func TestClientTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.ClientTimeout = 30 * time.Millisecond
	b, h := newTestBroker(t, cfg)
	pr := startPoll(h, proxyPoll("slow", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	c := do(h, "POST", "/client", clientPoll(testOffer, "unknown", ""))
	if c.code != 200 || c.body != `{"error":"timed out waiting for answer!"}` {
		t.Fatalf("%d %q", c.code, c.body)
	}
	if p := <-pr; !strings.Contains(p.body, "client match") {
		t.Fatalf("proxy: %q", p.body)
	}
	// The late answer is refused.
	if a := do(h, "POST", "/answer", answerBody("slow", testAnswer)); a.body != `{"Status":"client gone"}` {
		t.Fatalf("late answer: %q", a.body)
	}
	if len(b.m.sids) != 0 {
		t.Fatalf("sessions left: %d", len(b.m.sids))
	}
}

func TestLegacyClient(t *testing.T) {
	cfg := testConfig()
	cfg.ClientTimeout = 50 * time.Millisecond
	b, h := newTestBroker(t, cfg)
	if r := do(h, "POST", "/client", testOffer); r.code != 503 || r.body != "" {
		t.Fatalf("no proxies: %d %q", r.code, r.body)
	}
	if r := do(h, "POST", "/client", testOffer, "Snowflake-NAT-Type", "cone"); r.code != 400 {
		t.Fatalf("bad NAT header: %d", r.code)
	}
	// Timeout after a match.
	pr := startPoll(h, proxyPoll("p1", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	if r := do(h, "POST", "/client", testOffer, "Snowflake-NAT-Type", "restricted"); r.code != 504 || r.body != "" {
		t.Fatalf("timeout: %d %q", r.code, r.body)
	}
	if p := <-pr; !strings.Contains(p.body, `"NAT":"restricted"`) || !strings.Contains(p.body, `"RelayURL":"wss://snowflake.torproject.net/"`) {
		t.Fatalf("proxy: %q", p.body)
	}
	// Answer: the bare SDP JSON comes back. An unrestricted legacy client
	// is served by a restricted proxy.
	pr = startPoll(h, proxyPoll("p2", "restricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	cr := make(chan result, 1)
	go func() { cr <- do(h, "POST", "/client", testOffer, "Snowflake-NAT-Type", "unrestricted") }()
	if p := <-pr; !strings.Contains(p.body, "client match") {
		t.Fatalf("proxy: %q", p.body)
	}
	do(h, "POST", "/answer", answerBody("p2", testAnswer))
	if c := <-cr; c.code != 200 || c.body != testAnswer {
		t.Fatalf("answer: %d %q", c.code, c.body)
	}
}

func TestDuplicateSid(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 5 * time.Second
	b, h := newTestBroker(t, cfg)
	first := startPoll(h, proxyPoll("dup", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	second := startPoll(h, proxyPoll("dup", "unrestricted", 0, pat(testPattern)))
	// The first poll is replaced: it ends with "no match" at once.
	if r := <-first; !strings.Contains(r.body, `"no match"`) {
		t.Fatalf("replaced poll: %q", r.body)
	}
	waitWaiting(t, b, 1)
	cr := make(chan result, 1)
	go func() { cr <- do(h, "POST", "/client", clientPoll(testOffer, "unknown", "")) }()
	if r := <-second; !strings.Contains(r.body, "client match") {
		t.Fatalf("second poll: %q", r.body)
	}
	// While the session waits for its answer the Sid cannot poll again.
	if r := do(h, "POST", "/proxy", proxyPoll("dup", "unrestricted", 0, pat(testPattern))); r.code != 400 {
		t.Fatalf("poll with a matched Sid: %d %q", r.code, r.body)
	}
	do(h, "POST", "/answer", answerBody("dup", testAnswer))
	if c := <-cr; !strings.Contains(c.body, "answer") {
		t.Fatalf("client: %q", c.body)
	}
}

func TestMaxWaitingProxies(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWaitingProxies = 2
	cfg.ProxyTimeout = 5 * time.Second
	b, h := newTestBroker(t, cfg)
	p1 := startPoll(h, proxyPoll("a", "restricted", 0, pat(testPattern)))
	p2 := startPoll(h, proxyPoll("b", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 2)
	r := do(h, "POST", "/proxy", proxyPoll("c", "unrestricted", 0, pat(testPattern)))
	if r.body != `{"Status":"no match","Offer":"","NAT":"","NextPoll":20000,"RelayURL":""}` {
		t.Fatalf("over the limit: %q", r.body)
	}
	waitWaiting(t, b, 2)
	b.Close()
	for _, ch := range []<-chan result{p1, p2} {
		if r := <-ch; !strings.Contains(r.body, "no match") {
			t.Fatalf("after Close: %q", r.body)
		}
	}
	waitWaiting(t, b, 0)
}

func TestClientHangsUp(t *testing.T) {
	cfg := testConfig()
	cfg.ClientTimeout = time.Minute
	b, h := newTestBroker(t, cfg)
	pr := startPoll(h, proxyPoll("p", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cr := make(chan result, 1)
	go func() { cr <- doCtx(ctx, h, "POST", "/client", clientPoll(testOffer, "unknown", "")) }()
	<-pr
	cancel()
	<-cr
	if a := do(h, "POST", "/answer", answerBody("p", testAnswer)); a.body != `{"Status":"client gone"}` {
		t.Fatalf("answer after hang-up: %q", a.body)
	}
	b.m.mu.Lock()
	n := len(b.m.sids)
	b.m.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

func TestProxyHangsUp(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = time.Minute
	b, h := newTestBroker(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		doCtx(ctx, h, "POST", "/proxy", proxyPoll("gone", "unrestricted", 0, pat(testPattern)))
		close(done)
	}()
	waitWaiting(t, b, 1)
	cancel()
	<-done
	waitWaiting(t, b, 0)
	if r := do(h, "POST", "/client", clientPoll(testOffer, "unknown", "")); !strings.Contains(r.body, "no snowflake proxies") {
		t.Fatalf("client matched a departed proxy: %q", r.body)
	}
}

func TestDebug(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 5 * time.Second
	b, h := newTestBroker(t, cfg)
	if r := do(h, "GET", "/debug", ""); r.body != "current snowflakes available: 0\n\tunknown proxies: 0\nNAT Types available:\n\trestricted: 0\n\tunrestricted: 0\n\tunknown: 0" {
		t.Fatalf("empty: %q", r.body)
	}
	var polls []<-chan result
	for i, p := range []struct{ typ, nat string }{
		{"standalone", "restricted"}, {"standalone", "unrestricted"}, {"webext", "unknown"}, {"whatever", "unrestricted"},
	} {
		body, _ := (&messages.ProxyPollRequest{Sid: fmt.Sprint(i), Type: p.typ, NAT: p.nat, AcceptedRelayPattern: pat("")}).Encode()
		polls = append(polls, startPoll(h, string(body)))
	}
	waitWaiting(t, b, 4)
	r := do(h, "GET", "/debug", "")
	want := "current snowflakes available: 4\n\tstandalone proxies: 2\n\twebext proxies: 1\n\tunknown proxies: 1\nNAT Types available:\n\trestricted: 1\n\tunrestricted: 2\n\tunknown: 1"
	if r.code != 200 || r.body != want {
		t.Fatalf("%q\nwant %q", r.body, want)
	}
	b.Close()
	for _, p := range polls {
		<-p
	}
}

func TestMetricsEndpoint(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	if r := do(h, "GET", "/metrics", ""); r.code != 404 {
		t.Fatalf("without a log: %d", r.code)
	}
	path := t.TempDir() + "/metrics.log"
	cfg := testConfig()
	cfg.MetricsLogPath = path
	if err := writeFile(path, "snowflake-stats-end x\n"); err != nil {
		t.Fatal(err)
	}
	_, h = newTestBroker(t, cfg)
	if r := do(h, "GET", "/metrics", ""); r.code != 200 || r.body != "snowflake-stats-end x\n" {
		t.Fatalf("%d %q", r.code, r.body)
	}
}

func writeFile(path, s string) error {
	return osWriteFile(path, []byte(s))
}

// TestGetMethodsHandledLikePost checks that the method is not checked, as in
// the reference: a GET to /client is a poll with an empty body.
func TestGetMethodsHandledLikePost(t *testing.T) {
	_, h := newTestBroker(t, testConfig())
	if r := do(h, "GET", "/client", ""); r.code != 200 || r.body != `{"error":"unsupported message version"}` {
		t.Fatalf("%d %q", r.code, r.body)
	}
}

// TestConcurrentRendezvous runs many proxies and clients at once: every
// client must get the answer of exactly one proxy, and no proxy may be
// given two clients.
func TestConcurrentRendezvous(t *testing.T) {
	const n = 200
	cfg := testConfig()
	cfg.ProxyTimeout = 10 * time.Second
	cfg.ClientTimeout = 10 * time.Second
	b, h := newTestBroker(t, cfg)
	nats := []string{"unknown", "restricted", "unrestricted"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	offersSeen := map[string]string{} // client offer -> sid that got it
	// Proxies: half unrestricted so that every client NAT can be served.
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sid := fmt.Sprintf("proxy-%d", i)
			nat := "unrestricted"
			if i%2 == 1 {
				nat = "restricted"
			}
			r := do(h, "POST", "/proxy", proxyPoll(sid, nat, i%3*8, pat(testPattern)))
			resp, err := messages.DecodeProxyPollResponse([]byte(r.body))
			if err != nil || resp.Status != messages.StatusMatch {
				return // not every proxy gets a client
			}
			mu.Lock()
			if prev, dup := offersSeen[resp.Offer]; dup {
				t.Errorf("offer %s given to %s and %s", resp.Offer, prev, sid)
			}
			offersSeen[resp.Offer] = sid
			mu.Unlock()
			a := do(h, "POST", "/answer", answerBody(sid, answerWithID("answer-of-"+sid)))
			if a.body != `{"Status":"success"}` {
				t.Errorf("%s answer: %q", sid, a.body)
			}
		}(i)
	}
	waitWaiting(t, b, n)
	answers := make(chan string, n)
	var cwg sync.WaitGroup
	for i := 0; i < n; i++ {
		cwg.Add(1)
		go func(i int) {
			defer cwg.Done()
			// Unrestricted clients may take any proxy; the others need an
			// unrestricted one, of which there are n/2.
			nat := nats[i%3]
			if i >= n/2 {
				nat = "unrestricted"
			}
			r := do(h, "POST", "/client", clientPoll(offerWithID(fmt.Sprintf("offer-%d", i)), nat, ""))
			resp, err := messages.DecodeClientPollResponse([]byte(r.body))
			if err != nil {
				t.Errorf("client %d: %q", i, r.body)
				return
			}
			if resp.Answer != "" {
				answers <- resp.Answer
			} else {
				answers <- ""
			}
		}(i)
	}
	cwg.Wait()
	close(answers)
	got := map[string]bool{}
	matched := 0
	for a := range answers {
		if a == "" {
			continue
		}
		if got[a] {
			t.Errorf("answer %s delivered twice", a)
		}
		got[a] = true
		matched++
	}
	b.Close() // ends the unmatched polls
	wg.Wait()
	if matched != n {
		t.Errorf("%d of %d clients matched", matched, n)
	}
	if len(offersSeen) != matched {
		t.Errorf("%d proxies matched, %d clients answered", len(offersSeen), matched)
	}
	waitWaiting(t, b, 0)
	if len(b.m.sids) != 0 {
		t.Errorf("%d sessions left", len(b.m.sids))
	}
}

func TestExpiryLeavesNothing(t *testing.T) {
	before := numGoroutineSettled(0)
	cfg := testConfig()
	cfg.ProxyTimeout = 30 * time.Millisecond
	cfg.ClientTimeout = 30 * time.Millisecond
	b, h := newTestBroker(t, cfg)
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			do(h, "POST", "/proxy", proxyPoll(fmt.Sprint(i), "unrestricted", 0, pat(testPattern)))
		}(i)
	}
	// Some clients get matched and are never answered.
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(h, "POST", "/client", clientPoll(testOffer, "restricted", ""))
		}()
	}
	wg.Wait()
	waitWaiting(t, b, 0)
	b.m.mu.Lock()
	sessions := len(b.m.sids)
	b.m.mu.Unlock()
	if sessions != 0 {
		t.Fatalf("%d sessions left", sessions)
	}
	b.Close()
	if after := numGoroutineSettled(before); after > before+5 {
		t.Fatalf("goroutines: %d before, %d after", before, after)
	}
}

func TestPollIntervalsFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		u, r time.Duration
		ok   bool
	}{
		{`{"unrestricted_poll_interval":5000,"restricted_poll_interval":30000}`, 5 * time.Second, 30 * time.Second, true},
		{`{"unrestricted_poll_interval":0,"restricted_poll_interval":1}`, 0, time.Millisecond, true},
		{`{"unrestricted_poll_interval":5000}`, 0, 0, false},
		{`{"unrestricted_poll_interval":-1,"restricted_poll_interval":1}`, 0, 0, false},
		{`{"unrestricted_poll_interval":1,"restricted_poll_interval":1,"open":1}`, 0, 0, false},
		{`{"unrestricted_poll_interval":1,"restricted_poll_interval":999999999999}`, 0, 0, false},
		{`{"unrestricted_poll_interval":1,"restricted_poll_interval":1} {}`, 0, 0, false},
		{`not json`, 0, 0, false},
	} {
		u, r, err := ParsePollIntervals(strings.NewReader(tc.in))
		if (err == nil) != tc.ok || u != tc.u || r != tc.r {
			t.Errorf("%s: %v %v %v", tc.in, u, r, err)
		}
	}
}

func FuzzPollIntervals(f *testing.F) {
	f.Add(`{"unrestricted_poll_interval":5000,"restricted_poll_interval":30000}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		u, r, err := ParsePollIntervals(strings.NewReader(s))
		if err == nil && (u < 0 || r < 0 || u > maxPollInterval || r > maxPollInterval) {
			t.Fatalf("out of range accepted: %v %v", u, r)
		}
	})
}

// offerWithID and answerWithID return valid descriptions told apart by id.
func offerWithID(id string) string {
	return strings.Replace(testOffer, "ice-ufrag:uf", "ice-ufrag:"+id, 1)
}

func answerWithID(id string) string {
	return strings.Replace(testAnswer, "ice-ufrag:uf", "ice-ufrag:"+id, 1)
}
