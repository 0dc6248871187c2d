package metrics

import (
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
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

func TestGeoIP(t *testing.T) {
	dir := t.TempDir()
	v4 := filepath.Join(dir, "geoip")
	v6 := filepath.Join(dir, "geoip6")
	os.WriteFile(v4, []byte("# comment\n16777216,16777471,AU\n16777472,16778239,cn\n3221226240,3221226495,??\n"), 0o644)
	os.WriteFile(v6, []byte("2001:4:112::,2001:4:112:ffff:ffff:ffff:ffff:ffff,US\n"), 0o644)
	g, err := LoadGeoIP(v4, v6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ addr, want string }{
		{"1.0.0.0", "AU"},
		{"1.0.0.255", "AU"},
		{"1.0.1.0", "CN"},
		{"1.0.3.255", "CN"},
		{"1.0.4.0", ""},
		{"0.255.255.255", ""},
		{"192.0.2.1", ""},
		{"2001:4:112::1", "US"},
		{"2001:4:113::1", ""},
		{"::ffff:1.0.0.1", "AU"},
	} {
		if got := g.Country(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Country(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	var nilDB *GeoIP
	if nilDB.Country(netip.MustParseAddr("1.0.0.1")) != "" {
		t.Error("nil database gave a country")
	}
	os.WriteFile(v4, []byte("1,2\n"), 0o644)
	if _, err := LoadGeoIP(v4, ""); err == nil {
		t.Error("malformed file accepted")
	}
	if _, err := LoadGeoIP(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("missing file accepted")
	}
}

func TestTorGeoIPFiles(t *testing.T) {
	// Debian's tor-geoipdb ships these; the metrics default to them.
	if _, err := os.Stat("/usr/share/tor/geoip"); err != nil {
		t.Fatalf("tor geoip database missing (install tor-geoipdb): %v", err)
	}
	g, err := LoadGeoIP("/usr/share/tor/geoip", "/usr/share/tor/geoip6")
	if err != nil {
		t.Fatal(err)
	}
	if cc := g.Country(netip.MustParseAddr("1.0.0.1")); len(cc) != 2 {
		t.Errorf("1.0.0.1 -> %q", cc)
	}
}
