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
	m.ConnectionEnded(proxy.ConnInfo{ClientAddr: netip.MustParseAddr("1.2.3.4"), FromClient: 2500, ToClient: 10000})
	m.ConnectionEnded(proxy.ConnInfo{FromClient: 500})
	m.ConnectionTimedOut()
	m.NATTypeChanged("restricted")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", Path, nil))
	body := rec.Body.String()
	for _, want := range []string{
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
}
