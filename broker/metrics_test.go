package broker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/geoip"
)

func TestBinCount(t *testing.T) {
	for in, want := range map[uint64]uint64{0: 0, 1: 8, 7: 8, 8: 8, 9: 16, 16: 16, 17: 24} {
		if got := binCount(in); got != want {
			t.Errorf("binCount(%d) = %d, want %d", in, got, want)
		}
	}
}

func testGeoip(t *testing.T) *geoip.Table {
	tab, err := geoip.Parse(strings.NewReader(
		"16777216,16777471,AU\n33554432,33554687,DE\n50331648,50331903,US\n"),
		strings.NewReader("2001:db8::,2001:db8::ffff,NL\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// pollFrom sends a proxy poll from addr with a short hold.
func pollFrom(h http.Handler, addr, sid, typ, nat string, pattern *string) result {
	body := fmt.Sprintf(`{"Sid":%q,"Version":"1.3","Type":%q,"NAT":%q,"Clients":0`, sid, typ, nat)
	if pattern != nil {
		body += fmt.Sprintf(`,"AcceptedRelayPattern":%q`, *pattern)
	}
	body += "}"
	req := httptestRequest("POST", "/proxy", body)
	req.RemoteAddr = addr
	return serve(h, req)
}

func TestMetricsReport(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = time.Millisecond
	cfg.Geoip = testGeoip(t)
	cfg.MetricsInterval = 3 * time.Hour
	b, h := newTestBroker(t, cfg)
	for _, p := range []struct{ addr, typ, nat string }{
		{"1.0.0.1:1000", "standalone", "restricted"},
		{"1.0.0.1:1001", "standalone", "restricted"}, // same address and type: counted once
		{"1.0.0.1:1002", "webext", "restricted"},     // new type: counted again
		{"1.0.0.2:1000", "standalone", "unrestricted"},
		{"2.0.0.1:1000", "badge", "unknown"},
		{"3.0.0.1:1000", "standalone", "unrestricted"},
		{"[2001:db8::1]:5", "iptproxy", "unrestricted"},
		{"9.9.9.9:1", "somethingelse", "unknown"},
		{"[::ffff:3.0.0.2]:1", "standalone", "unrestricted"},
	} {
		pollFrom(h, p.addr, "s", p.typ, p.nat, pat(testPattern))
	}
	// Rejected polls still count their proxy's address.
	pollFrom(h, "9.9.9.9:1", "s", "standalone", "unknown", nil)                 // legacy, rejected
	pollFrom(h, "9.9.9.9:1", "s", "standalone", "unknown", pat("example.com$")) // rejected
	for i := 0; i < 9; i++ {
		do(h, "POST", "/client", clientPoll(testOffer, "unrestricted", ""))
	}
	do(h, "POST", "/client", clientPoll(testOffer, "restricted", ""))
	do(h, "POST", "/client", clientPoll(testOffer, "unknown", ""))

	var out bytes.Buffer
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := b.metrics.report(&out, now, cfg.MetricsInterval); err != nil {
		t.Fatal(err)
	}
	want := `snowflake-stats-end 2026-03-04 05:06:07 (10800 s)
snowflake-ips AU=3,??=2,US=2,DE=1,NL=1
snowflake-ips-standalone 5
snowflake-ips-webext 1
snowflake-ips-badge 1
snowflake-ips-iptproxy 1
snowflake-ips-bloco 0
snowflake-ips-total 9
snowflake-idle-count 16
snowflake-proxy-poll-with-relay-url-count 16
snowflake-proxy-poll-without-relay-url-count 8
snowflake-proxy-rejected-for-relay-url-count 8
client-denied-count 16
client-restricted-denied-count 8
client-unrestricted-denied-count 16
client-snowflake-match-count 0
snowflake-ips-nat-restricted 1
snowflake-ips-nat-unrestricted 4
snowflake-ips-nat-unknown 2
`
	if out.String() != want {
		t.Fatalf("report:\n%s\nwant:\n%s", out.String(), want)
	}
	// Everything resets after a report.
	out.Reset()
	b.metrics.report(&out, now, cfg.MetricsInterval)
	if !strings.Contains(out.String(), "snowflake-ips \nsnowflake-ips-standalone 0\n") || !strings.Contains(out.String(), "client-denied-count 0\n") {
		t.Fatalf("after reset:\n%s", out.String())
	}
}

func TestMetricsLogTicker(t *testing.T) {
	cfg := testConfig()
	cfg.MetricsInterval = 10 * time.Millisecond
	w := &syncBuffer{}
	cfg.MetricsLog = w
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.String(), "snowflake-ips-nat-unknown") {
		if time.Now().After(deadline) {
			t.Fatal("no report written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Close()
	if !strings.HasPrefix(w.String(), "snowflake-stats-end ") {
		t.Fatalf("%q", w.String())
	}
}

func TestPrometheus(t *testing.T) {
	cfg := testConfig()
	cfg.ProxyTimeout = 2 * time.Second
	b, h := newTestBroker(t, cfg)
	pr := startPoll(h, proxyPoll("p", "unrestricted", 0, pat(testPattern)))
	waitWaiting(t, b, 1)
	r := do(h, "GET", "/prometheus", "")
	for _, want := range []string{
		`snowflake_available_proxies{nat="unrestricted",type="standalone"} 1`,
		`snowflake_available_proxies{nat="restricted",type="standalone"} 0`,
		`snowflake_rounded_proxy_poll_with_relay_url_extension_total{nat="unrestricted",type="standalone"} 8`,
		`snowflake_proxy_total{cc="??",nat="unrestricted",type="standalone"} 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("missing %s", want)
		}
	}
	cr := make(chan result, 1)
	go func() { cr <- do(h, "POST", "/client", clientPoll(testOffer, "restricted", "")) }()
	<-pr
	do(h, "POST", "/answer", answerBody("p", testAnswer))
	<-cr
	for i := 0; i < 9; i++ {
		do(h, "POST", "/client", clientPoll(testOffer, "unknown", ""))
	}
	r = do(h, "GET", "/prometheus", "")
	for _, want := range []string{
		`snowflake_rounded_client_poll_total{nat="restricted",status="matched"} 8`,
		`snowflake_rounded_client_poll_total{nat="unknown",status="denied"} 16`,
		`snowflake_rounded_proxy_poll_total{nat="unrestricted",status="matched"} 8`,
		`snowflake_available_proxies{nat="unrestricted",type="standalone"} 0`,
		"# TYPE snowflake_rounded_client_poll_total counter",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("missing %s in\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, `status="idle"`) {
		t.Error("untouched cells must not be exported")
	}
	if r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS on /prometheus")
	}
	_ = context.Background
}
