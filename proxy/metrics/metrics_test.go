package metrics

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/proxy"
)

func TestMetricsExposition(t *testing.T) {
	m := New(func(a netip.Addr) string {
		if a == netip.MustParseAddr("1.2.3.4") {
			return "DE"
		}
		return ""
	})
	m.RegisterClientsGauge(func() int { return 3 })
	m.ConnectionStarted(proxy.ConnInfo{ClientAddr: netip.MustParseAddr("1.2.3.4")})
	m.BytesRelayed(10000, 0)
	m.BytesRelayed(0, 2500)
	m.ConnectionStarted(proxy.ConnInfo{})
	m.BytesRelayed(0, 500)
	m.ConnectionTimedOut()
	m.NATTypeChanged("restricted")
	// Both connections still run: they are counted already.
	body := scrape(m)
	for _, want := range []string{
		`tor_snowflake_proxy_connections_active 2`,
		`tor_snowflake_proxy_connections_total{country="DE"} 1`,
		`tor_snowflake_proxy_connections_total{country="??"} 1`,
		`tor_snowflake_proxy_connection_timeouts_total 1`,
		`tor_snowflake_proxy_traffic_inbound_bytes_total 10`,
		`tor_snowflake_proxy_traffic_outbound_bytes_total 3`,
		`tor_snowflake_proxy_nat_type{type="restricted"} 1`,
		`tor_snowflake_proxy_nat_type{type="unrestricted"} 0`,
		`tor_snowflake_proxy_clients 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
	m.ConnectionEnded(proxy.ConnInfo{FromClient: 500})
	body = scrape(m)
	for _, want := range []string{
		`tor_snowflake_proxy_connections_active 1`,
		`tor_snowflake_proxy_connections_total{country="??"} 1`,
		`tor_snowflake_proxy_traffic_outbound_bytes_total 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after an end, missing %q in:\n%s", want, body)
		}
	}
}

func scrape(m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
	return rec.Body.String()
}
