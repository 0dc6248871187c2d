// Package metrics exports a proxy's activity as Prometheus metrics, with the
// names and units of Tor's snowflake-proxy (namespace tor_snowflake_proxy)
// so that existing dashboards keep working, plus two gauges of our own.
package metrics

import (
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/snowfall-pt/snowfall/proxy"
)

// Namespace is Tor's metric namespace for proxies.
const Namespace = "tor_snowflake_proxy"

// Path is where Tor's proxy serves its metrics.
const Path = "/internal/metrics"

// Metrics implements proxy.Observer and collects the metrics. Connections
// count when they start and bytes as they flow, so that a scrape sees the
// connections that are still running, not only the finished ones.
type Metrics struct {
	proxy.NopObserver
	reg         *prometheus.Registry
	country     func(netip.Addr) string
	connections *prometheus.CounterVec
	active      prometheus.Gauge
	timeouts    prometheus.Counter
	inbound     prometheus.Counter
	outbound    prometheus.Counter
	natType     *prometheus.GaugeVec
}

// New returns metrics registered on a fresh registry. country maps a client
// address to a two-letter code (nil or "" gives "??").
func New(country func(netip.Addr) string) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		country: country,
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "connections_total",
			Help:      "The total number of client connections handled by the proxy, counted when they start",
		}, []string{"country"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "connections_active",
			Help:      "The number of client connections being relayed now (Snowfall extension)",
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "connection_timeouts_total",
			Help:      "The total number of client connections that failed to open their data channel",
		}),
		inbound: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "traffic_inbound_bytes_total",
			Help:      "The total traffic relayed towards clients, in KB (1000 bytes)",
		}),
		outbound: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "traffic_outbound_bytes_total",
			Help:      "The total traffic relayed from clients, in KB (1000 bytes)",
		}),
		natType: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "nat_type",
			Help:      "1 for the NAT type the proxy currently reports (Snowfall extension)",
		}, []string{"type"}),
	}
	m.reg.MustRegister(m.connections, m.active, m.timeouts, m.inbound, m.outbound, m.natType)
	return m
}

// RegisterClientsGauge adds a gauge of clients being served, read from fn
// (Snowfall extension).
func (m *Metrics) RegisterClientsGauge(fn func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "clients",
		Help:      "The number of clients being served now (Snowfall extension)",
	}, func() float64 { return float64(fn()) }))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ConnectionStarted implements proxy.Observer.
func (m *Metrics) ConnectionStarted(ci proxy.ConnInfo) {
	cc := ""
	if m.country != nil && ci.ClientAddr.IsValid() {
		cc = m.country(ci.ClientAddr)
	}
	if cc == "" {
		cc = "??"
	}
	m.connections.WithLabelValues(cc).Inc()
	m.active.Inc()
}

// BytesRelayed implements proxy.Observer. Tor's proxy exports KB;
// fractions keep the sums exact.
func (m *Metrics) BytesRelayed(toClient, fromClient int) {
	if toClient > 0 {
		m.inbound.Add(float64(toClient) / 1000)
	}
	if fromClient > 0 {
		m.outbound.Add(float64(fromClient) / 1000)
	}
}

// ConnectionEnded implements proxy.Observer.
func (m *Metrics) ConnectionEnded(proxy.ConnInfo) { m.active.Dec() }

// ConnectionTimedOut implements proxy.Observer.
func (m *Metrics) ConnectionTimedOut() { m.timeouts.Inc() }

// NATTypeChanged implements proxy.Observer.
func (m *Metrics) NATTypeChanged(t string) {
	for _, x := range []string{"unknown", "restricted", "unrestricted"} {
		v := 0.0
		if x == t {
			v = 1
		}
		m.natType.WithLabelValues(x).Set(v)
	}
}

var _ proxy.Observer = (*Metrics)(nil)
