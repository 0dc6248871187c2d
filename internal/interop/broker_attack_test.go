//go:build integration

package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Black-box attacks on the built snowfall-broker (issue 10), on loopback:
// the attacker and the legitimate peers use different 127.0.0.0/8 source
// addresses, so per-source limits see them apart. Every attack is bounded
// in count and time, and each test checks the broker's memory (peak RSS)
// and goroutines (from its loopback -debug-addr listener), and that a
// legitimate proxy and client still meet during the attack.

const (
	attackerIP = "127.0.0.2"
	legitProxy = "127.0.0.3"
	legitCient = "127.0.0.4"
	// A valid data-channel offer and answer, as the broker's checks want.
	attackOffer  = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:uf\r\na=ice-pwd:pw\r\n"
	attackAnswer = "v=0\r\na=fingerprint:sha-256 EF:01\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:ua\r\na=ice-pwd:pa\r\n"
)

func sdpJSON(typ, sdp string) string {
	return `{"type":"` + typ + `","sdp":` + strconv.Quote(sdp) + `}`
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// attackBroker is a running snowfall-broker under test.
type attackBroker struct {
	p          *testbed.Process
	url, debug string
}

func startAttackBroker(ctx context.Context, t *testing.T, extra ...string) *attackBroker {
	t.Helper()
	path, err := bins.Path(ctx, "snowfall-broker")
	if err != nil {
		t.Fatal(err)
	}
	addr, debug := freeAddr(t), freeAddr(t)
	args := append([]string{"-addr", addr, "-disable-tls", "-disable-geoip",
		"-allowed-relay-pattern", "snowflake.torproject.net$", "-debug-addr", debug,
		"-metrics-log", os.DevNull}, extra...)
	p, err := testbed.StartProcess(testbed.ProcessConfig{Name: "snowfall-broker", Path: path, Args: args, LogDir: artifacts(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	b := &attackBroker{p: p, url: "http://" + addr, debug: "http://" + debug}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if !p.Running() || time.Now().After(deadline) {
			t.Fatalf("broker not listening: %v\n%s", err, testbed.Tail(p.StderrPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b
}

// clientFrom returns an HTTP client whose connections come from ip.
func clientFrom(ip string, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
	}
}

func post(ctx context.Context, c *http.Client, url, body string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b), err
}

// goroutines reads the broker's goroutine count from its debug listener.
func (b *attackBroker) goroutines(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(b.debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		t.Fatalf("goroutine profile: %q", line)
	}
	return n
}

// settledGoroutines waits (bounded) for the count to fall to at most
// limit, and returns the last count read.
func (b *attackBroker) settledGoroutines(t *testing.T, limit int) int {
	t.Helper()
	n := b.goroutines(t)
	for deadline := time.Now().Add(15 * time.Second); n > limit && time.Now().Before(deadline); n = b.goroutines(t) {
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

func (b *attackBroker) peakRSS(t *testing.T) int64 {
	t.Helper()
	n, err := testbed.ProcessPeakRSS(b.p.PID())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waiting returns the number of held proxy polls (the /debug summary).
func (b *attackBroker) waiting(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(b.url + "/debug")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "current snowflakes available:")))
	if err != nil {
		t.Fatalf("/debug: %q", line)
	}
	return n
}

// legitMatch runs one rendezvous between an unrestricted proxy and a
// restricted client, from their own addresses: the proxy polls, the
// client's offer reaches it, and its answer reaches the client.
func (b *attackBroker) legitMatch(ctx context.Context, sid string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pc, cc := clientFrom(legitProxy, 2), clientFrom(legitCient, 2)
	defer pc.CloseIdleConnections()
	defer cc.CloseIdleConnections()
	pattern := "snowflake.torproject.net$"
	poll, _ := (&messages.ProxyPollRequest{Sid: sid, Type: "standalone", NAT: "unrestricted", AcceptedRelayPattern: &pattern}).Encode()
	type pollResult struct {
		resp *messages.ProxyPollResponse
		err  error
	}
	got := make(chan pollResult, 1)
	go func() {
		for ctx.Err() == nil {
			code, _, body, err := post(ctx, pc, b.url+"/proxy", string(poll))
			if err != nil || code != 200 {
				got <- pollResult{nil, fmt.Errorf("proxy poll: %d %v %q", code, err, body)}
				return
			}
			resp, err := messages.DecodeProxyPollResponse([]byte(body))
			if err != nil || resp.Status == messages.StatusMatch {
				got <- pollResult{resp, err}
				return
			}
		}
		got <- pollResult{nil, ctx.Err()}
	}()
	creq, _ := (&messages.ClientPollRequest{Offer: sdpJSON("offer", attackOffer), NAT: "restricted"}).Encode()
	answer := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			code, _, body, err := post(ctx, cc, b.url+"/client", string(creq))
			if err != nil || code != 200 {
				answer <- fmt.Errorf("client poll: %d %v %q", code, err, body)
				return
			}
			resp, err := messages.DecodeClientPollResponse([]byte(body))
			if err != nil {
				answer <- err
				return
			}
			if resp.Answer != "" {
				if resp.Answer != sdpJSON("answer", attackAnswer) {
					answer <- fmt.Errorf("client got answer %q", resp.Answer)
				}
				answer <- nil
				return
			}
			if resp.Error != messages.StrNoProxies {
				answer <- fmt.Errorf("client poll: %q", resp.Error)
				return
			}
			// No proxy yet: the legitimate proxy's poll has not arrived.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		answer <- ctx.Err()
	}()
	p := <-got
	if p.err != nil {
		return p.err
	}
	ans, _ := (&messages.ProxyAnswerRequest{Sid: sid, Answer: sdpJSON("answer", attackAnswer)}).Encode()
	code, _, body, err := post(ctx, pc, b.url+"/answer", string(ans))
	if err != nil || code != 200 || !strings.Contains(body, messages.StatusSuccess) {
		return fmt.Errorf("answer: %d %v %q", code, err, body)
	}
	return <-answer
}

// flood runs n requests from attackerIP over conns connections and counts
// the status codes.
func flood(ctx context.Context, n, conns int, url string, body func(i int) string) (map[int]int, []http.Header, error) {
	c := clientFrom(attackerIP, conns)
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	var hdrs []http.Header
	var firstErr error
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				code, h, _, err := post(ctx, c, url, body(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				codes[code]++
				if code == http.StatusTooManyRequests && len(hdrs) < 10 {
					hdrs = append(hdrs, h)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Idle keep-alive connections each hold a server goroutine until the
	// broker's idle timeout; close them so that the count shows leaks.
	c.CloseIdleConnections()
	return codes, hdrs, firstErr
}

const mb = 1 << 20

// TestBrokerSidFlood: 1000 polls with 99 KB Sids (issue 10: +113 MB) are
// refused, and the broker's memory and goroutines stay flat.
func TestBrokerSidFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Rate limits off: this tests the field bound alone.
	b := startAttackBroker(ctx, t, "-proxy-rate", "0", "-client-rate", "0")
	rss0, g0 := b.peakRSS(t), b.goroutines(t)
	long := strings.Repeat("x", 99000)
	pattern := "snowflake.torproject.net$"
	matched := make(chan error, 1)
	go func() {
		// The legitimate rendezvous runs while the flood is under way.
		time.Sleep(200 * time.Millisecond)
		matched <- b.legitMatch(ctx, "legit-sid-flood")
	}()
	codes, _, err := flood(ctx, 1000, 32, b.url+"/proxy", func(i int) string {
		body, _ := (&messages.ProxyPollRequest{Sid: strconv.Itoa(i) + long, Type: "standalone", NAT: "unrestricted", AcceptedRelayPattern: &pattern}).Encode()
		return string(body)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-matched; err != nil {
		t.Errorf("legitimate rendezvous during the flood: %v", err)
	}
	if codes[400] != 1000 {
		t.Errorf("flood answers %v, want 1000 × 400", codes)
	}
	if n := b.waiting(t); n != 0 {
		t.Errorf("%d polls held after the flood", n)
	}
	rss1 := b.peakRSS(t)
	g1 := b.settledGoroutines(t, g0+10)
	t.Logf("peak RSS %d MB -> %d MB; goroutines %d -> %d", rss0/mb, rss1/mb, g0, g1)
	// Bounds: the flood may cost request buffers (32 connections of at
	// most 4 KB bodies), not the 99 MB it sent.
	if rss1-rss0 > 40*mb {
		t.Errorf("peak RSS grew %d MB, bound 40 MB", (rss1-rss0)/mb)
	}
	if g1 > g0+10 {
		t.Errorf("goroutines %d after the flood, %d before (bound +10)", g1, g0)
	}
}

// TestBrokerSDPFlood: clients send 1000 offers of 90 KB while 200 of the
// attacker's proxies wait. The offers are refused, so no proxy is taken
// and no offer is held; a legitimate rendezvous still works.
func TestBrokerSDPFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startAttackBroker(ctx, t, "-proxy-rate", "0", "-client-rate", "0", "-proxy-timeout", "60s")
	rss0, g0 := b.peakRSS(t), b.goroutines(t)
	const proxies = 200
	pattern := "snowflake.torproject.net$"
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	var pwg sync.WaitGroup
	pc := clientFrom(attackerIP, proxies)
	for i := range proxies {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			// Restricted, so that the legitimate restricted client cannot
			// be matched with them.
			body, _ := (&messages.ProxyPollRequest{Sid: fmt.Sprintf("attacker-%d", i), Type: "standalone", NAT: "restricted", AcceptedRelayPattern: &pattern}).Encode()
			post(pctx, pc, b.url+"/proxy", string(body))
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); b.waiting(t) < proxies; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d attacker proxies waiting", b.waiting(t), proxies)
		}
	}
	big := sdpJSON("offer", strings.Replace(attackOffer, "a=ice-pwd:pw", "a=ice-pwd:"+strings.Repeat("p", 90000), 1))
	junk := sdpJSON("offer", "v=0\r\n"+strings.Repeat("a=x\r\n", 10000))
	matched := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		matched <- b.legitMatch(ctx, "legit-sdp-flood")
	}()
	codes, _, err := flood(ctx, 1000, 32, b.url+"/client", func(i int) string {
		offer := big
		if i%2 == 1 {
			offer = junk
		}
		// Unrestricted clients could take the attacker's proxies.
		body, _ := (&messages.ClientPollRequest{Offer: offer, NAT: "unrestricted"}).Encode()
		return string(body)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-matched; err != nil {
		t.Errorf("legitimate rendezvous during the flood: %v", err)
	}
	if codes[200] != 1000 {
		t.Errorf("flood answers %v, want 1000 × 200 with an error", codes)
	}
	if n := b.waiting(t); n != proxies {
		t.Errorf("%d attacker proxies still waiting, want all %d: bad offers took proxies", n, proxies)
	}
	rss1 := b.peakRSS(t)
	pcancel()
	pwg.Wait()
	g1 := b.settledGoroutines(t, g0+10)
	t.Logf("peak RSS %d MB -> %d MB; goroutines %d -> %d", rss0/mb, rss1/mb, g0, g1)
	if rss1-rss0 > 60*mb {
		t.Errorf("peak RSS grew %d MB, bound 60 MB", (rss1-rss0)/mb)
	}
	if g1 > g0+10 {
		t.Errorf("goroutines %d after the flood, %d before (bound +10)", g1, g0)
	}
}

// TestBrokerRateLimit: one source sending 300 client polls and 300 proxy
// polls in a burst gets 429 with Retry-After beyond its budget, while other
// sources are served.
func TestBrokerRateLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const rate, burst = 2, 10
	b := startAttackBroker(ctx, t, "-client-rate", strconv.Itoa(rate), "-client-burst", strconv.Itoa(burst),
		"-proxy-rate", strconv.Itoa(rate), "-proxy-burst", strconv.Itoa(burst), "-proxy-timeout", "1s")
	rss0, g0 := b.peakRSS(t), b.goroutines(t)
	pattern := "snowflake.torproject.net$"
	for _, ep := range []struct {
		path string
		body string
	}{
		{"/client", func() string {
			b, _ := (&messages.ClientPollRequest{Offer: sdpJSON("offer", attackOffer), NAT: "unrestricted"}).Encode()
			return string(b)
		}()},
		{"/proxy", func() string {
			b, _ := (&messages.ProxyPollRequest{Sid: "attacker", Type: "standalone", NAT: "restricted", AcceptedRelayPattern: &pattern}).Encode()
			return string(b)
		}()},
	} {
		start := time.Now()
		codes, hdrs, err := flood(ctx, 300, 8, b.url+ep.path, func(int) string { return ep.body })
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		// At most the burst plus what the rate refills meanwhile.
		served := 300 - codes[429]
		most := burst + int(elapsed.Seconds()*rate) + 1
		t.Logf("%s: %v in %v", ep.path, codes, elapsed.Round(time.Millisecond))
		if served < burst || served > most {
			t.Errorf("%s: %d served, want %d..%d", ep.path, served, burst, most)
		}
		if len(hdrs) == 0 {
			t.Fatalf("%s: no 429", ep.path)
		}
		for _, h := range hdrs {
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("%s: Retry-After %q", ep.path, h.Get("Retry-After"))
			}
		}
	}
	// The limited source does not hold back others.
	if err := b.legitMatch(ctx, "legit-rate"); err != nil {
		t.Errorf("legitimate rendezvous after the flood: %v", err)
	}
	g1 := b.settledGoroutines(t, g0+10)
	rss1 := b.peakRSS(t)
	t.Logf("peak RSS %d MB -> %d MB; goroutines %d -> %d", rss0/mb, rss1/mb, g0, g1)
	if g1 > g0+10 {
		t.Errorf("goroutines %d after the flood, %d before (bound +10)", g1, g0)
	}
	// Refused requests cost a response each, nothing that stays.
	if rss1-rss0 > 20*mb {
		t.Errorf("peak RSS grew %d MB, bound 20 MB", (rss1-rss0)/mb)
	}
	if !strings.Contains(testbed.Tail(b.p.StderrPath, 50), "reason=rate_limit") {
		t.Errorf("rate limiting not logged:\n%s", testbed.Tail(b.p.StderrPath, 20))
	}
}

// TestBrokerRateLimitBehindFront: behind a trusted front (-trust-forwarded
// -trusted-proxies), clients are limited by the address the front saw; a
// client that writes its own X-Forwarded-For entries cannot escape its
// bucket, and other clients behind the same front are not held back.
func TestBrokerRateLimitBehindFront(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const front = "127.0.0.5"
	b := startAttackBroker(ctx, t, "-client-rate", "0.1", "-client-burst", "3", "-proxy-rate", "0",
		"-trust-forwarded", "-trusted-proxies", front+"/32")
	c := clientFrom(front, 4)
	defer c.CloseIdleConnections()
	poll, _ := (&messages.ClientPollRequest{Offer: sdpJSON("offer", attackOffer), NAT: "unrestricted"}).Encode()
	send := func(xff string) int {
		req, _ := http.NewRequestWithContext(ctx, "POST", b.url+"/client", strings.NewReader(string(poll)))
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := map[int]int{}
	for i := range 50 {
		// The client forges a new leftmost entry every time; the front
		// appends the real address.
		codes[send(fmt.Sprintf("9.9.%d.%d, 198.51.100.1", i/256, i%256))]++
	}
	if codes[200] != 3 || codes[429] != 47 {
		t.Errorf("forging client: %v, want 3 × 200 and 47 × 429", codes)
	}
	if got := send("198.51.100.2"); got != 200 {
		t.Errorf("another client behind the front: %d", got)
	}
	// The front's own address is not a client: a direct request without
	// the header shares no bucket with the clients behind it.
	if got := send(""); got != 200 {
		t.Errorf("request without a header: %d", got)
	}
}
