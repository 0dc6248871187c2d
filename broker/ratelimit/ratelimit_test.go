package ratelimit

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func allowN(l *Limiter, a string, n int, now time.Time) int {
	ok := 0
	for range n {
		if allowed, _ := l.Allow(netip.MustParseAddr(a), now); allowed {
			ok++
		}
	}
	return ok
}

func TestBurstThenRetryAfter(t *testing.T) {
	l := New(Config{Rate: 2, Burst: 5})
	if got := allowN(l, "192.0.2.1", 10, t0); got != 5 {
		t.Fatalf("allowed %d of 10 at once, want the burst of 5", got)
	}
	ok, retry := l.Allow(netip.MustParseAddr("192.0.2.1"), t0)
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("after the burst: ok %v retry %v, want false 500ms", ok, retry)
	}
	// Denials do not use tokens up: one token is back after 1/rate.
	if got := allowN(l, "192.0.2.1", 3, t0.Add(500*time.Millisecond)); got != 1 {
		t.Fatalf("allowed %d after 500ms, want 1", got)
	}
	if got := allowN(l, "192.0.2.2", 5, t0); got != 5 {
		t.Fatalf("another source allowed %d, want 5", got)
	}
	if got := allowN(l, "::ffff:192.0.2.1", 1, t0); got != 0 {
		t.Fatal("an IPv4-mapped address escaped its IPv4 bucket")
	}
}

func TestIPv6Prefix(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	if got := allowN(l, "2001:db8:1:2::1", 1, t0) + allowN(l, "2001:db8:1:2:ffff::9", 1, t0); got != 1 {
		t.Fatalf("two addresses of one /64 allowed %d, want 1", got)
	}
	if got := allowN(l, "2001:db8:1:3::1", 1, t0); got != 1 {
		t.Fatal("another /64 was limited")
	}
	l = New(Config{Rate: 1, Burst: 1, IPv6Prefix: 128})
	if got := allowN(l, "2001:db8::1", 1, t0) + allowN(l, "2001:db8::2", 1, t0); got != 2 {
		t.Fatal("prefix 128 grouped two addresses")
	}
}

func TestTableBound(t *testing.T) {
	var overflows int
	l := New(Config{Rate: 1, Burst: 1, MaxSources: 3, OnOverflow: func(int) { overflows++ }})
	for i := range 3 {
		allowN(l, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String(), 1, t0)
	}
	// A flood of new sources shares the overflow bucket (burst 4).
	ok := 0
	for i := range 100 {
		ok += allowN(l, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String(), 1, t0)
	}
	if ok != 4 || l.Sources() != 3 || overflows != 1 {
		t.Fatalf("flood: %d allowed, %d tracked, %d overflow reports; want 4, 3, 1", ok, l.Sources(), overflows)
	}
	// Once the tracked sources are idle, a sweep makes room.
	if got := allowN(l, "203.0.113.1", 1, t0.Add(2*time.Second)); got != 1 || l.Sources() != 1 {
		t.Fatalf("after idling: allowed %d, %d tracked; want 1, 1", got, l.Sources())
	}
}

func TestDisabled(t *testing.T) {
	l := New(Config{})
	if l != nil {
		t.Fatal("rate 0 gave a limiter")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.1"), t0); !ok || l.Sources() != 0 {
		t.Fatal("nil limiter denied")
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Config{Rate: 1e9, Burst: 1 << 30})
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(addrs[i%len(addrs)], now)
		i++
	}
}

// BenchmarkSourceMemory reports the memory one tracked source costs.
func BenchmarkSourceMemory(b *testing.B) {
	const n = 100000
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		l := New(Config{Rate: 1, Burst: 10, MaxSources: n})
		for i := range n {
			l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if l.Sources() != n {
			b.Fatalf("%d sources", l.Sources())
		}
		b.ReportMetric(float64(m1.HeapInuse-m0.HeapInuse)/n, "B/source")
	}
}
