package broker

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/internal/geoip"
)

// proxyTypes are the known proxy types plus "unknown", which is last.
var proxyTypes = append(slices.Clone(messages.KnownProxyTypes), "unknown")

var unknownType = uint8(len(proxyTypes) - 1)

func proxyTypeIndex(t string) uint8 {
	for i, k := range proxyTypes[:unknownType] {
		if k == t {
			return uint8(i)
		}
	}
	return unknownType
}

// maxSeenProxies bounds the per-interval set of distinct proxy addresses, so
// that forged Forwarded headers cannot grow it without limit.
const maxSeenProxies = 1 << 21

// binCount rounds n up to a multiple of 8, as published counts are.
func binCount(n uint64) uint64 { return (n + 7) / 8 * 8 }

type seenKey struct {
	addr  netip.Addr
	ptype uint8
}

// metrics collects the daily text report (PROTOCOL.md §10.1) and the
// Prometheus counters (§10.2). Counters of the text report reset after every
// report; Prometheus counters are cumulative.
type metrics struct {
	// Text report counters.
	proxyIdle, pollWithRelay, pollWithoutRelay, pollRejected atomic.Uint64
	clientDenied, clientRestrictedDenied                     atomic.Uint64
	clientUnrestrictedDenied, clientMatch                    atomic.Uint64

	geoip atomic.Pointer[geoip.Table]

	mu        sync.Mutex
	seen      map[seenKey]struct{}
	countries map[string]int
	typeIPs   []int
	natIPs    [numNAT]map[netip.Addr]struct{}

	// Prometheus.
	registry      *prometheus.Registry
	proxyTotal    *prometheus.CounterVec
	proxyPoll     *roundedVec // nat, status
	clientPoll    *roundedVec // nat, status
	withRelay     *roundedVec // nat, type
	withoutRelay  *roundedVec // nat, type
	rejectedRelay *roundedVec // nat, type
}

const (
	statusIdle    = 0
	statusMatched = 1
	statusDenied  = 0
)

func newMetrics(available func() [][numNAT]int) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.resetLocked()
	m.proxyTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "snowflake", Name: "proxy_total",
		Help: "The number of unique snowflake IPs",
	}, []string{"type", "nat", "cc"})
	typesNAT := func(name, help string) *roundedVec {
		return newRoundedVec("snowflake_"+name, help, []string{"nat", "type"}, natNames[:], proxyTypes)
	}
	m.proxyPoll = newRoundedVec("snowflake_rounded_proxy_poll_total",
		"The number of snowflake proxy polls, rounded up to a multiple of 8",
		[]string{"nat", "status"}, natNames[:], []string{"idle", "matched"})
	m.clientPoll = newRoundedVec("snowflake_rounded_client_poll_total",
		"The number of snowflake client polls, rounded up to a multiple of 8",
		[]string{"nat", "status"}, natNames[:], []string{"denied", "matched"})
	m.withRelay = typesNAT("rounded_proxy_poll_with_relay_url_extension_total",
		"The number of snowflake proxy polls with Relay URL Extension, rounded up to a multiple of 8")
	m.withoutRelay = typesNAT("rounded_proxy_poll_without_relay_url_extension_total",
		"The number of snowflake proxy polls without Relay URL Extension, rounded up to a multiple of 8")
	m.rejectedRelay = typesNAT("rounded_proxy_poll_rejected_relay_url_extension_total",
		"The number of snowflake proxy polls rejected by Relay URL Extension, rounded up to a multiple of 8")
	m.registry.MustRegister(m.proxyTotal, m.proxyPoll, m.clientPoll, m.withRelay,
		m.withoutRelay, m.rejectedRelay, &availableCollector{get: available})
	return m
}

func (m *metrics) resetLocked() {
	m.seen = make(map[seenKey]struct{})
	m.countries = make(map[string]int)
	m.typeIPs = make([]int, len(proxyTypes))
	for i := range m.natIPs {
		m.natIPs[i] = make(map[netip.Addr]struct{})
	}
}

// proxySeen records a proxy poll from addr for the per-country and distinct
// address counts.
func (m *metrics) proxySeen(addr netip.Addr, ptype uint8, nat natClass) {
	if !addr.IsValid() {
		return
	}
	k := seenKey{addr, ptype}
	m.mu.Lock()
	if _, ok := m.seen[k]; ok || len(m.seen) >= maxSeenProxies {
		m.mu.Unlock()
		return
	}
	m.seen[k] = struct{}{}
	cc, _ := m.geoip.Load().Country(addr)
	m.countries[cc]++
	m.typeIPs[ptype]++
	m.natIPs[nat][addr] = struct{}{}
	m.mu.Unlock()
	m.proxyTotal.WithLabelValues(proxyTypes[ptype], natNames[nat], cc).Inc()
}

// report writes the text report for the interval of the given length ending
// at now, and starts a new interval.
func (m *metrics) report(w io.Writer, now time.Time, interval time.Duration) error {
	var b strings.Builder
	m.mu.Lock()
	secs := int64(interval / time.Second)
	fmt.Fprintf(&b, "snowflake-stats-end %s (%d s)\n", now.UTC().Format("2006-01-02 15:04:05"), secs)
	fmt.Fprintf(&b, "snowflake-ips %s\n", formatCountries(m.countries))
	total := 0
	for i, n := range m.typeIPs {
		total += n
		if uint8(i) != unknownType {
			fmt.Fprintf(&b, "snowflake-ips-%s %d\n", proxyTypes[i], n)
		}
	}
	fmt.Fprintf(&b, "snowflake-ips-total %d\n", total)
	nat := [numNAT]int{len(m.natIPs[0]), len(m.natIPs[1]), len(m.natIPs[2])}
	m.resetLocked()
	m.mu.Unlock()
	for _, c := range []struct {
		name string
		v    *atomic.Uint64
	}{
		{"snowflake-idle-count", &m.proxyIdle},
		{"snowflake-proxy-poll-with-relay-url-count", &m.pollWithRelay},
		{"snowflake-proxy-poll-without-relay-url-count", &m.pollWithoutRelay},
		{"snowflake-proxy-rejected-for-relay-url-count", &m.pollRejected},
		{"client-denied-count", &m.clientDenied},
		{"client-restricted-denied-count", &m.clientRestrictedDenied},
		{"client-unrestricted-denied-count", &m.clientUnrestrictedDenied},
		{"client-snowflake-match-count", &m.clientMatch},
	} {
		fmt.Fprintf(&b, "%s %d\n", c.name, binCount(c.v.Swap(0)))
	}
	fmt.Fprintf(&b, "snowflake-ips-nat-restricted %d\n", nat[natRestricted])
	fmt.Fprintf(&b, "snowflake-ips-nat-unrestricted %d\n", nat[natUnrestricted])
	fmt.Fprintf(&b, "snowflake-ips-nat-unknown %d\n", nat[natUnknown])
	_, err := io.WriteString(w, b.String())
	return err
}

// formatCountries lists "CC=N" by count descending, then code ascending.
func formatCountries(counts map[string]int) string {
	type rec struct {
		cc string
		n  int
	}
	rs := make([]rec, 0, len(counts))
	for cc, n := range counts {
		rs = append(rs, rec{cc, n})
	}
	slices.SortFunc(rs, func(a, b rec) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.cc, b.cc)
	})
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s=%d", r.cc, r.n)
	}
	return strings.Join(parts, ",")
}

// roundedVec is a counter with two labels over fixed value sets, exported
// rounded up to a multiple of 8 so that small counts reveal little. Only
// cells that were incremented are exported, like a CounterVec.
type roundedVec struct {
	desc    *prometheus.Desc
	a, b    []string
	cells   []atomic.Uint64
	touched []atomic.Bool
}

func newRoundedVec(name, help string, labels, a, b []string) *roundedVec {
	return &roundedVec{
		desc:    prometheus.NewDesc(name, help, labels, nil),
		a:       a,
		b:       b,
		cells:   make([]atomic.Uint64, len(a)*len(b)),
		touched: make([]atomic.Bool, len(a)*len(b)),
	}
}

func (v *roundedVec) inc(i, j int) {
	k := i*len(v.b) + j
	v.cells[k].Add(1)
	if !v.touched[k].Load() {
		v.touched[k].Store(true)
	}
}

func (v *roundedVec) value(i, j int) uint64 { return v.cells[i*len(v.b)+j].Load() }

func (v *roundedVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *roundedVec) Collect(ch chan<- prometheus.Metric) {
	for i := range v.a {
		for j := range v.b {
			k := i*len(v.b) + j
			if !v.touched[k].Load() {
				continue
			}
			ch <- prometheus.MustNewConstMetric(v.desc, prometheus.CounterValue,
				float64(binCount(v.cells[k].Load())), v.a[i], v.b[j])
		}
	}
}

// availableCollector exports the number of waiting proxies by type and NAT.
type availableCollector struct {
	get func() [][numNAT]int
}

var availableDesc = prometheus.NewDesc("snowflake_available_proxies",
	"The number of currently available snowflake proxies", []string{"type", "nat"}, nil)

func (c *availableCollector) Describe(ch chan<- *prometheus.Desc) { ch <- availableDesc }

func (c *availableCollector) Collect(ch chan<- prometheus.Metric) {
	for t, byNAT := range c.get() {
		for n, v := range byNAT {
			ch <- prometheus.MustNewConstMetric(availableDesc, prometheus.GaugeValue,
				float64(v), proxyTypes[t], natNames[n])
		}
	}
}
