package broker

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGrafanaDashboard checks deploy/grafana/snowfall-dashboard.json
// against the metrics the broker and the proxy export: every metric it
// names exists, and every counter is read through rate() or increase(),
// never as a cumulative snapshot.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/snowfall-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	// What the broker exports, once every vector has a child.
	cfg := testConfig()
	cfg.ProxyTimeout = time.Millisecond
	_, h := newTestBroker(t, cfg)
	do(h, "POST", "/proxy", proxyPoll("dash", "unrestricted", 0, pat(testPattern)))
	do(h, "POST", "/proxy", proxyPoll("dash", "unrestricted", 0, pat("other.example$")))
	do(h, "POST", "/proxy", proxyPoll("dash", "unrestricted", 0, nil))
	do(h, "POST", "/client", clientPoll(testOffer, "unrestricted", ""))
	brokerMetrics := do(h, "GET", "/prometheus", "").body
	proxySrc, err := os.ReadFile("../proxy/metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\b(tor_snowflake_proxy_|snowflake_|snowfall_)[a-z_]+\b`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, loc := range name.FindAllStringIndex(tg.Expr, -1) {
				m := tg.Expr[loc[0]:loc[1]]
				if strings.HasPrefix(m, "tor_snowflake_proxy_") {
					if !strings.Contains(string(proxySrc), `"`+strings.TrimPrefix(m, "tor_snowflake_proxy_")+`"`) {
						t.Errorf("%s: the proxy exports no %s", p.Title, m)
					}
				} else if !strings.Contains(brokerMetrics, "\n"+m+"{") && !strings.Contains(brokerMetrics, "\n"+m+" ") {
					t.Errorf("%s: the broker exports no %s", p.Title, m)
				}
				if strings.HasSuffix(m, "_total") {
					before := tg.Expr[:loc[0]]
					if !strings.HasSuffix(before, "rate(") && !strings.HasSuffix(before, "increase(") {
						t.Errorf("%s: counter %s is not read through rate() or increase(): %s", p.Title, m, tg.Expr)
					}
				}
			}
		}
	}
	if exprs < 10 {
		t.Fatalf("only %d queries in the dashboard", exprs)
	}
}
