package broker

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
)

// serveLoopback runs b.Serve on 127.0.0.1 and returns the base URL.
func serveLoopback(t *testing.T, b *Broker, tlsConfig *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln, tlsConfig) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String()
}

type tcpPoller struct {
	t      *testing.T
	client *http.Client
	base   string
	reused atomic.Int32
	conns  atomic.Int32
	// lastClose is whether the last response said Connection: close.
	lastClose atomic.Bool
}

func (p *tcpPoller) post(path, body string) (int, string, http.Header) {
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		p.conns.Add(1)
		if i.Reused {
			p.reused.Add(1)
		}
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", p.base+path, strings.NewReader(body))
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Errorf("%s: %v", path, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	p.lastClose.Store(resp.Close)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Errorf("%s body: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func testParked(t *testing.T, tlsConfig *tls.Config, clientTLS *tls.Config) {
	cfg := testConfig()
	cfg.ProxyTimeout = 100 * time.Millisecond
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := serveLoopback(t, b, tlsConfig)
	tr := &http.Transport{TLSClientConfig: clientTLS, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	proxy := &tcpPoller{t: t, client: &http.Client{Transport: tr}, base: base}

	// Repeated polls that find nobody: each is parked, answered by the
	// broker itself, and the keep-alive connection carries on.
	for i := 0; i < 3; i++ {
		code, body, hdr := proxy.post("/proxy", proxyPoll("tcp", "unrestricted", 0, pat(testPattern)))
		if code != 200 || body != `{"Status":"no match","Offer":"","NAT":"","NextPoll":20000,"RelayURL":""}` {
			t.Fatalf("poll %d: %d %q", i, code, body)
		}
		if hdr.Get("Access-Control-Allow-Origin") != "*" || hdr.Get("Content-Type") != "text/plain; charset=utf-8" || hdr.Get("Date") == "" {
			t.Fatalf("headers %v", hdr)
		}
	}
	if proxy.reused.Load() != 2 {
		t.Fatalf("connection reused %d times of 2", proxy.reused.Load())
	}

	// A match over TCP, with the client on its own connection.
	b.cfg.ProxyTimeout = 5 * time.Second
	polled := make(chan string, 1)
	go func() {
		_, body, _ := proxy.post("/proxy", proxyPoll("tcp2", "unrestricted", 0, pat(testPattern)))
		polled <- body
	}()
	waitWaiting(t, b, 1)
	b.m.mu.Lock()
	parked := b.m.unrestricted[0].parked != nil
	b.m.mu.Unlock()
	if !parked {
		t.Fatal("the poll holds its handler instead of being parked")
	}
	ctr := &http.Transport{TLSClientConfig: clientTLS}
	defer ctr.CloseIdleConnections()
	client := &tcpPoller{t: t, client: &http.Client{Transport: ctr}, base: base}
	answered := make(chan string, 1)
	go func() {
		_, body, _ := client.post("/client", clientPoll(testOffer, "restricted", fp2))
		answered <- body
	}()
	resp, err := messages.DecodeProxyPollResponse([]byte(<-polled))
	if err != nil || resp.Status != messages.StatusMatch || resp.Offer != testOffer || resp.RelayURL != relay2 || resp.NAT != "restricted" {
		t.Fatalf("match: %+v %v", resp, err)
	}
	if code, body, _ := proxy.post("/answer", answerBody("tcp2", testAnswer)); code != 200 || body != `{"Status":"success"}` {
		t.Fatalf("answer: %d %q", code, body)
	}
	if got := <-answered; !strings.Contains(got, `"answer"`) {
		t.Fatalf("client: %q", got)
	}
	// The poll and the answer went over the proxy's one connection.
	if proxy.conns.Load() != 5 || proxy.reused.Load() != 4 {
		t.Fatalf("conns %d reused %d", proxy.conns.Load(), proxy.reused.Load())
	}

	// Close answers parked polls and closes their connections.
	go func() {
		_, body, _ := proxy.post("/proxy", proxyPoll("tcp3", "restricted", 0, pat(testPattern)))
		polled <- body
	}()
	waitWaiting(t, b, 1)
	b.Close()
	if got := <-polled; !strings.Contains(got, "no match") {
		t.Fatalf("after Close: %q", got)
	}
}

func TestParkedPlain(t *testing.T) { testParked(t, nil, nil) }

func TestParkedTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	testParked(t, &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool})
}

// TestParkedBadRequests checks error replies on connections that serve
// parked polls.
func TestParkedBadRequests(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 5 * time.Second
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := serveLoopback(t, b, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	p := &tcpPoller{t: t, client: &http.Client{Transport: tr}, base: base}
	held := make(chan string, 1)
	go func() {
		_, body, _ := p.post("/proxy", proxyPoll("busy", "unrestricted", 0, pat(testPattern)))
		held <- body
	}()
	waitWaiting(t, b, 1)
	c := &tcpPoller{t: t, client: &http.Client{Transport: tr}, base: base}
	got := make(chan string, 1)
	go func() {
		_, body, _ := c.post("/client", clientPoll(testOffer, "unknown", ""))
		got <- body
	}()
	<-held
	// A second poll with the matched Sid is refused with 400 over a parked
	// connection too, and the server closes that connection.
	if code, _, _ := p.post("/proxy", proxyPoll("busy", "unrestricted", 0, pat(testPattern))); code != 400 {
		t.Fatalf("matched Sid: %d", code)
	}
	// The proxy must be told, or its client reuses the closed socket.
	if !p.lastClose.Load() {
		t.Fatal("400 on a parked connection did not say Connection: close")
	}
	p.post("/answer", answerBody("busy", testAnswer))
	if body := <-got; !strings.Contains(body, "answer") {
		t.Fatalf("client: %q", body)
	}
	// Oversize and malformed bodies over TCP.
	if code, _, _ := p.post("/proxy", strings.Repeat("x", MaxBodySize+1)); code != 400 {
		t.Fatalf("oversize: %d", code)
	}
}

// TestStalledClient checks that a client that sends part of its headers and
// stops is cut by the server.
func TestStalledClient(t *testing.T) {
	b, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := serveLoopback(t, b, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /proxy HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(readHeaderTimeout + 10*time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if time.Since(start) < readHeaderTimeout/2 {
		t.Fatalf("closed too early")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestRawHTTP checks HTTP/1.0 polls (held in their handler, connection
// closed after the reply) and pipelined requests behind a parked poll.
func TestRawHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 50 * time.Millisecond
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := strings.TrimPrefix(serveLoopback(t, b, nil), "http://")
	poll := proxyPoll("raw", "unrestricted", 0, pat(testPattern))
	req := func(proto string) string {
		return "POST /proxy " + proto + "\r\nHost: b\r\nContent-Length: " + itoa(len(poll)) + "\r\n\r\n" + poll
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, req("HTTP/1.0"))
	all, err := io.ReadAll(conn) // the server closes an HTTP/1.0 connection
	if err != nil || !strings.HasPrefix(string(all), "HTTP/1.0 200 OK\r\n") || !strings.HasSuffix(string(all), `"RelayURL":""}`) {
		t.Fatalf("HTTP/1.0: %v %q", err, all)
	}

	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn2, req("HTTP/1.1")+"GET /robots.txt HTTP/1.1\r\nHost: b\r\n\r\n")
	rd := bufio.NewReader(conn2)
	for i, want := range []string{`"no match"`, "Disallow: /"} {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("response %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
