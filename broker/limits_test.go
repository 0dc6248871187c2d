package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/broker/bridgelist"
	"github.com/snowfall-pt/snowfall/common/messages"
)

func TestSidBound(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 10 * time.Millisecond
	b, h := newTestBroker(t, cfg)
	// Issue 10: 1000 polls with 99 KB Sids were all held.
	long := strings.Repeat("s", 99000)
	for i := range 1000 {
		r := do(h, "POST", "/proxy", proxyPoll(fmt.Sprint(i, long), "unrestricted", 0, pat(testPattern)))
		if r.code != 400 {
			t.Fatalf("poll %d with a 99 KB Sid: status %d, want 400", i, r.code)
		}
	}
	if u, r := b.Waiting(); u+r != 0 {
		t.Fatalf("%d polls with oversized Sids held", u+r)
	}
	if r := do(h, "POST", "/proxy", proxyPoll(strings.Repeat("s", DefaultMaxSidBytes+1), "unrestricted", 0, pat(testPattern))); r.code != 400 {
		t.Fatalf("Sid of %d bytes: %d", DefaultMaxSidBytes+1, r.code)
	}
	if r := do(h, "POST", "/answer", answerBody(strings.Repeat("s", DefaultMaxSidBytes+1), testAnswer)); r.code != 400 {
		t.Fatalf("answer with a long Sid: %d", r.code)
	}
	if r := do(h, "POST", "/proxy", proxyPoll(strings.Repeat("s", DefaultMaxSidBytes), "unrestricted", 0, pat(testPattern))); r.code != 200 || !strings.Contains(r.body, messages.StatusNoMatch) {
		t.Fatalf("Sid at the bound: %d %q", r.code, r.body)
	}
}

func TestProxyFieldBounds(t *testing.T) {
	b, h := newTestBroker(t, testConfig())
	if r := do(h, "POST", "/proxy", proxyPoll("sid", "unrestricted", 0, pat(strings.Repeat("a", 300)+".snowflake.torproject.net$"))); r.code != 400 {
		t.Errorf("long relay pattern: %d", r.code)
	}
	// Type and NAT have no bound of their own: the body bound covers them.
	body := strings.Replace(proxyPoll("sid", "unrestricted", 0, pat(testPattern)), `"standalone"`, `"`+strings.Repeat("t", maxProxyPollBody)+`"`, 1)
	if r := do(h, "POST", "/proxy", body); r.code != 400 {
		t.Errorf("%d-byte poll: %d", len(body), r.code)
	}
	if u, r := b.Waiting(); u+r != 0 {
		t.Errorf("%d polls held", u+r)
	}
	metrics := do(h, "GET", "/prometheus", "").body
	for _, want := range []string{
		`snowfall_broker_refused_total{endpoint="proxy",reason="pattern_size"} 1`,
		`snowfall_broker_refused_total{endpoint="proxy",reason="body_size"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("no %s in /prometheus", want)
		}
	}
}

func sdp(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n"
}

var goodSDP = []string{"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=fingerprint:sha-256 AB:CD",
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=ice-ufrag:uf", "a=ice-pwd:pw",
	"a=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host"}

func without(prefix string) []string {
	var out []string
	for _, l := range goodSDP {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func TestCheckSDP(t *testing.T) {
	many := append([]string{}, goodSDP...)
	for range maxCandidates {
		many = append(many, "a=candidate:2 1 udp 1 192.0.2.2 9 typ host")
	}
	for _, tc := range []struct {
		name string
		sdp  string
		ok   bool
	}{
		{"good", sdp(goodSDP...), true},
		{"LF only", strings.Join(goodSDP, "\n"), true},
		{"old data channel syntax", strings.Replace(sdp(goodSDP...), "UDP/DTLS/SCTP webrtc-datachannel", "DTLS/SCTP 5000", 1), true},
		{"empty", "", false},
		{"no version", sdp(goodSDP[1:]...), false},
		{"no media", sdp(without("m=")...), false},
		{"audio", sdp(append(goodSDP, "m=audio 9 UDP/TLS/RTP/SAVPF 111")...), false},
		{"no ufrag", sdp(without("a=ice-ufrag")...), false},
		{"empty pwd", strings.Replace(sdp(goodSDP...), "a=ice-pwd:pw", "a=ice-pwd:", 1), false},
		{"no fingerprint", sdp(without("a=fingerprint")...), false},
		{"too many candidates", sdp(many...), false},
		{"bad line", sdp(append(goodSDP, "garbage")...), false},
		{"NUL", sdp(append(goodSDP, "a=x\x00")...), false},
	} {
		err := checkSDP(tc.sdp, false)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, errSDPInvalid) {
			t.Errorf("%s: %v is not errSDPInvalid", tc.name, err)
		}
	}
	if err := checkSessionDescription(testOffer, "answer", 1000); !errors.Is(err, errSDPInvalid) {
		t.Errorf("offer as answer: %v", err)
	}
	if err := checkSessionDescription(testOffer, "offer", 100); !errors.Is(err, errSDPTooLarge) {
		t.Errorf("over the size bound: %v", err)
	}
	if err := checkSessionDescription(`{"type":"offer"`, "offer", 1000); !errors.Is(err, errSDPInvalid) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestSDPChecksAtEndpoints(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 5 * time.Second
	cfg.MaxSDPBytes = 4096
	b, h := newTestBroker(t, cfg)
	pr := make(chan result, 1)
	go func() { pr <- do(h, "POST", "/proxy", proxyPoll("p1", "unrestricted", 0, pat(testPattern))) }()
	waitWaiting(t, b, 1)
	// Bad offers are refused without using up the waiting proxy.
	for _, offer := range []string{
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"answer","sdp":"v=0\r\n"}`,
		"not json",
		strings.Replace(testOffer, "a=ice-pwd:pw", "a=ice-pwd:"+strings.Repeat("p", 5000), 1),
	} {
		r := do(h, "POST", "/client", clientPoll(offer, "unrestricted", ""))
		resp, err := messages.DecodeClientPollResponse([]byte(r.body))
		if err != nil || !strings.HasPrefix(resp.Error, "offer: ") {
			t.Errorf("offer %.40q: %d %q", offer, r.code, r.body)
		}
	}
	if u, _ := b.Waiting(); u != 1 {
		t.Fatal("a bad offer took the waiting proxy")
	}
	cr := make(chan result, 1)
	go func() { cr <- do(h, "POST", "/client", clientPoll(testOffer, "unrestricted", "")) }()
	if p := <-pr; !strings.Contains(p.body, messages.StatusMatch) {
		t.Fatalf("proxy: %q", p.body)
	}
	if r := do(h, "POST", "/answer", answerBody("p1", testOffer)); r.code != 400 || !strings.Contains(r.body, "answer: ") {
		t.Errorf("offer as answer: %d %q", r.code, r.body)
	}
	if r := do(h, "POST", "/answer", answerBody("p1", testAnswer)); r.code != 200 {
		t.Errorf("good answer after a bad one: %d %q", r.code, r.body)
	}
	if c := <-cr; !strings.Contains(c.body, "answer") || strings.Contains(c.body, "error") {
		t.Errorf("client: %q", c.body)
	}
}

func TestRateLimits(t *testing.T) {
	cfg := testConfig()
	cfg.ClientRate, cfg.ClientBurst = 0.5, 3
	cfg.ProxyRate, cfg.ProxyBurst = 0.5, 2
	cfg.ProxyTimeout = time.Millisecond
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, h := newTestBroker(t, cfg)
	from := func(path, body, addr string, hdr ...string) result {
		req := httptestRequest("POST", path, body)
		req.RemoteAddr = addr
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return serve(h, req)
	}
	cp := clientPoll(testOffer, "unrestricted", "")
	for i := range 3 {
		if r := from("/client", cp, "192.0.2.1:1000"); r.code != 200 {
			t.Fatalf("client poll %d within the burst: %d", i, r.code)
		}
	}
	r := from("/client", cp, "192.0.2.1:1001")
	if r.code != 429 || r.hdr.Get("Retry-After") != "2" || !strings.Contains(r.body, "rate limit") {
		t.Fatalf("over the burst: %d Retry-After %q %q", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	// AMP polls count against the same budget.
	if r := from("/amp/client/x", "", "192.0.2.1:1002"); r.code != 429 {
		t.Fatalf("AMP poll over the burst: %d", r.code)
	}
	if r := from("/client", cp, "192.0.2.2:1000"); r.code != 200 {
		t.Fatalf("another source: %d", r.code)
	}
	// Proxies have their own budget, shared by /proxy and /answer.
	pp := proxyPoll("sid", "unrestricted", 0, pat(testPattern))
	for i := range 2 {
		if r := from("/proxy", pp, "192.0.2.1:1000"); r.code != 200 {
			t.Fatalf("proxy poll %d: %d", i, r.code)
		}
	}
	if r := from("/answer", answerBody("sid", testAnswer), "192.0.2.1:1000"); r.code != 429 || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("answer over the proxy burst: %d", r.code)
	}
	if !strings.Contains(logs.String(), "refusing requests") || !strings.Contains(logs.String(), "reason=rate_limit") {
		t.Errorf("rate limiting not logged:\n%s", logs.String())
	}
}

func TestRateLimitBehindFront(t *testing.T) {
	cfg := testConfig()
	cfg.ClientRate, cfg.ClientBurst = 0.5, 1
	cfg.TrustForwarded = true
	_, h := newTestBroker(t, cfg)
	from := func(xff string) int {
		req := httptestRequest("POST", "/client", clientPoll(testOffer, "unrestricted", ""))
		req.RemoteAddr = "203.0.113.1:443" // the front
		req.Header.Set("X-Forwarded-For", xff)
		return serve(h, req).code
	}
	if from("198.51.100.1") != 200 || from("198.51.100.2") != 200 {
		t.Fatal("two clients behind one front were limited together")
	}
	// A client cannot escape its bucket by writing its own header.
	if got := from("9.9.9.9, 198.51.100.1"); got != 429 {
		t.Fatalf("forged header: %d", got)
	}
}

func TestRelayPatternWarning(t *testing.T) {
	for _, tc := range []struct {
		allowed, relay string
		warn           bool
	}{
		{"", "snowflake.torproject.net", true}, // Tor's default: rejects every proxy with a default pattern
		{"^192.0.2.1$", "192.0.2.1", true},
		{"example.com$", "example.com", true},
		{"torproject.net$", "snowflake.torproject.net", true},
		{"snowflake.torproject.net$", "snowflake.torproject.net", false},
		{"^snowflake.torproject.net$", "snowflake.torproject.net", false},
		{"01.snowflake.torproject.net$", "01.snowflake.torproject.net", false},
	} {
		var logs syncBuffer
		cfg := testConfig()
		cfg.AllowedRelayPattern = tc.allowed
		list, err := bridgelist.Parse(strings.NewReader(`{"displayName":"x","webSocketAddress":"wss://` + tc.relay + `/","fingerprint":"` + fp2 + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Bridges = list
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		b, err := New(cfg)
		if err != nil {
			t.Fatalf("%q: %v", tc.allowed, err)
		}
		b.Close()
		if got := strings.Contains(logs.String(), "proxies in their default configuration will all be rejected"); got != tc.warn {
			t.Errorf("allowed %q: warned %v, want %v\n%s", tc.allowed, got, tc.warn, logs.String())
		}
	}
}

func TestSpecial8(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			b := []byte("aaaaaaaa")
			b[pos] = byte(c)
			if got := special8(string(b)); got != jsonSpecial[c] {
				t.Fatalf("byte %#x at %d: %v, want %v", c, pos, got, jsonSpecial[c])
			}
		}
	}
	// Mixed high bytes must not hide or invent a special byte.
	if special8("\xff\x80\x81\xfe\xa0\xc0\x7e\x21") || !special8("\xff\x80\x81\xfe\xa0\xc0\x7e\x1f") {
		t.Fatal("high bytes confuse special8")
	}
}

func BenchmarkCheckOffer(b *testing.B) {
	o := benchOffer()
	b.SetBytes(int64(len(o)))
	for b.Loop() {
		if err := checkSessionDescription(o, "offer", DefaultMaxSDPBytes); err != nil {
			b.Fatal(err)
		}
	}
}
