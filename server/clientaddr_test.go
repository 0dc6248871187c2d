package server

import (
	"net/netip"
	"testing"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

func TestParseClientIP(t *testing.T) {
	tests := []struct {
		in       string
		want     string // "" for no address
		userAddr string
	}{
		{"1.2.3.4", "1.2.3.4", "1.2.3.4:1"},
		{"2001:db8::1", "2001:db8::1", "[2001:db8::1]:1"},
		{"::ffff:1.2.3.4", "1.2.3.4", "1.2.3.4:1"},
		{"0.0.0.0", "", ""},
		{"::", "", ""},
		{"", "", ""},
		{"garbage", "", ""},
		{"1.2.3.4:80", "", ""},
		{"[2001:db8::1]", "", ""},
		{"fe80::1%eth0", "", ""},
		{" 1.2.3.4", "", ""},
		{"1.2.3.256", "", ""},
		{"127.0.0.1", "127.0.0.1", "127.0.0.1:1"},
	}
	for _, tt := range tests {
		ip := ParseClientIP(tt.in)
		got := ""
		if ip.IsValid() {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("ParseClientIP(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if ua := userAddr(ip); ua != tt.userAddr {
			t.Errorf("userAddr(ParseClientIP(%q)) = %q, want %q", tt.in, ua, tt.userAddr)
		}
	}
}

func FuzzParseClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::1", "0.0.0.0", "::ffff:10.0.0.1", "fe80::1%eth0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip := ParseClientIP(s)
		if !ip.IsValid() {
			return
		}
		if ip.IsUnspecified() || ip.Zone() != "" || ip.Is4In6() {
			t.Fatalf("ParseClientIP(%q) = %v, which should have been refused", s, ip)
		}
		ap, err := netip.ParseAddrPort(userAddr(ip))
		if err != nil || ap.Addr() != ip || ap.Port() != 1 {
			t.Fatalf("userAddr(%v) = %q does not parse back", ip, userAddr(ip))
		}
	})
}

func id(n byte) turbotunnel.ClientID { return turbotunnel.ClientID{n} }

func TestClientIDMapNewestWins(t *testing.T) {
	m := newClientIDMap(4)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("2001:db8::2")
	m.Set(id(1), a)
	if got := m.Get(id(1)); got != a {
		t.Fatalf("Get = %v, want %v", got, a)
	}
	m.Set(id(1), b)
	if got := m.Get(id(1)); got != b {
		t.Fatalf("after a second Set, Get = %v, want %v", got, b)
	}
	if got := m.Get(id(2)); got.IsValid() {
		t.Fatalf("Get of an unknown ID = %v, want none", got)
	}
}

func TestClientIDMapEviction(t *testing.T) {
	m := newClientIDMap(3)
	addr := func(n byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, n}) }
	m.Set(id(1), addr(1))
	m.Set(id(2), addr(2))
	m.Set(id(3), addr(3))
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want 3", m.Len())
	}
	// The fourth record evicts the oldest, ID 1's.
	m.Set(id(4), addr(4))
	if got := m.Get(id(1)); got.IsValid() {
		t.Errorf("oldest ID still present: %v", got)
	}
	for n := byte(2); n <= 4; n++ {
		if got := m.Get(id(n)); got != addr(n) {
			t.Errorf("Get(%d) = %v, want %v", n, got, addr(n))
		}
	}
	// ID 2 is recorded again, so evicting its older record keeps it.
	m.Set(id(2), addr(22))
	m.Set(id(5), addr(5)) // evicts ID 2's first record
	if got := m.Get(id(2)); got != addr(22) {
		t.Errorf("ID 2 after its old record was evicted = %v, want %v", got, addr(22))
	}
	m.Set(id(6), addr(6)) // evicts ID 3
	m.Set(id(7), addr(7)) // evicts ID 4
	m.Set(id(8), addr(8)) // evicts ID 2's newer record
	if got := m.Get(id(2)); got.IsValid() {
		t.Errorf("ID 2 present after all its records were evicted: %v", got)
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d, want 3", m.Len())
	}
}

func TestClientIDMapBounded(t *testing.T) {
	const size = 100
	m := newClientIDMap(size)
	for i := range 10 * size {
		var cid turbotunnel.ClientID
		cid[0], cid[1] = byte(i), byte(i>>8)
		m.Set(cid, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		if m.Len() > size {
			t.Fatalf("after %d records Len = %d > %d", i+1, m.Len(), size)
		}
	}
	if m.Len() != size {
		t.Fatalf("Len = %d, want %d", m.Len(), size)
	}
}

func BenchmarkClientIDMapSet(b *testing.B) {
	m := newClientIDMap(DefaultClientIDMapSize)
	ip := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	var cid turbotunnel.ClientID
	for i := 0; b.Loop(); i++ {
		cid[0], cid[1], cid[2] = byte(i), byte(i>>8), byte(i>>16)
		m.Set(cid, ip)
	}
}
