package broker

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestForwardedClientAddr(t *testing.T) {
	cdn := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:f::/48")}
	const peer = "203.0.113.10"
	for _, tc := range []struct {
		name   string
		cfg    ForwardedConfig
		peer   string
		header string // header name; default X-Forwarded-For
		lines  []string
		want   string
	}{
		{"no header", ForwardedConfig{}, peer, "", nil, peer},
		{"one hop: rightmost", ForwardedConfig{Hops: 1}, peer, "", []string{"6.6.6.6, 198.51.100.2"}, "198.51.100.2"},
		// The attack the old leftmost-public parsing fell for: the client
		// writes its own header, the front appends the real address.
		{"one hop: forged left part ignored", ForwardedConfig{}, peer, "", []string{"1.1.1.1", "198.51.100.2"}, "198.51.100.2"},
		{"two hops", ForwardedConfig{Hops: 2}, peer, "", []string{"6.6.6.6, 198.51.100.2, 203.0.113.5"}, "198.51.100.2"},
		{"two hops, lines in order", ForwardedConfig{Hops: 2}, peer, "", []string{"6.6.6.6, 198.51.100.2", "203.0.113.5"}, "198.51.100.2"},
		{"too few hops: peer", ForwardedConfig{Hops: 2}, peer, "", []string{"198.51.100.2"}, peer},
		{"garbage at the client's hop: peer", ForwardedConfig{}, peer, "", []string{"6.6.6.6, bogus"}, peer},
		{"private client kept", ForwardedConfig{}, peer, "", []string{"10.1.2.3"}, "10.1.2.3"},
		{"port and mapped", ForwardedConfig{}, peer, "", []string{"[::ffff:198.51.100.2]:443"}, "198.51.100.2"},
		{"xff ignored when Forwarded configured", ForwardedConfig{Header: HeaderForwarded}, peer, "", []string{"198.51.100.2"}, peer},
		{"forwarded rightmost", ForwardedConfig{Header: HeaderForwarded}, peer, HeaderForwarded,
			[]string{`for=6.6.6.6;proto=https, for="[2001:db8:cafe::17]:4711";by=x`}, "2001:db8:cafe::17"},
		{"forwarded obfuscated: peer", ForwardedConfig{Header: HeaderForwarded}, peer, HeaderForwarded, []string{"for=_hidden"}, peer},
		{"forwarded no for: peer", ForwardedConfig{Header: HeaderForwarded}, peer, HeaderForwarded, []string{"proto=https"}, peer},
		{"proxies: untrusted peer", ForwardedConfig{Proxies: cdn}, "192.0.2.1", "", []string{"198.51.100.2"}, "192.0.2.1"},
		{"proxies: skip trusted from the right", ForwardedConfig{Proxies: cdn}, peer, "", []string{"6.6.6.6, 198.51.100.2, 2001:db8:f::1, 203.0.113.7"}, "198.51.100.2"},
		{"proxies: all trusted: leftmost", ForwardedConfig{Proxies: cdn}, peer, "", []string{"203.0.113.8, 203.0.113.7"}, "203.0.113.8"},
		{"proxies: garbage: last trusted", ForwardedConfig{Proxies: cdn}, peer, "", []string{"junk, 203.0.113.7"}, "203.0.113.7"},
	} {
		h := http.Header{}
		name := tc.header
		if name == "" {
			name = HeaderXForwardedFor
		}
		for _, v := range tc.lines {
			h.Add(name, v)
		}
		got := tc.cfg.clientAddr(netip.MustParseAddr(tc.peer), h)
		if got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
}

func TestRemoteAddrTrust(t *testing.T) {
	req, _ := http.NewRequest("POST", "/proxy", nil)
	req.RemoteAddr = "192.0.2.1:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	b := &Broker{}
	if got := b.remoteAddr(req); got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("untrusted: %v", got)
	}
	b.cfg.TrustForwarded = true
	if got := b.remoteAddr(req); got != netip.MustParseAddr("198.51.100.9") {
		t.Errorf("trusted: %v", got)
	}
	req.Header.Del("X-Forwarded-For")
	if got := b.remoteAddr(req); got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("trusted, no header: %v", got)
	}
	req.RemoteAddr = "[::ffff:192.0.2.2]:1"
	if got := b.remoteAddr(req); got != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("mapped: %v", got)
	}
}

// FuzzForwarded checks that header parsing never panics and only ever
// returns the peer or an address that appears in the header.
func FuzzForwarded(f *testing.F) {
	f.Add("6.6.6.6, 198.51.100.2", "X-Forwarded-For", 1, false)
	f.Add(`for="[2001:db8::1]:80";proto=https, for=_x`, "Forwarded", 2, true)
	f.Add(",,,;=\"", "Forwarded", 0, false)
	cdn := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	peer := netip.MustParseAddr("203.0.113.1")
	f.Fuzz(func(t *testing.T, line, header string, hops int, proxies bool) {
		cfg := ForwardedConfig{Header: header, Hops: hops % 8}
		if proxies {
			cfg.Proxies = cdn
		}
		if _, ok := ParseForwardedHeader(header); !ok {
			cfg.Header = HeaderForwarded
		}
		h := http.Header{}
		h.Add(cfg.Header, line)
		got := cfg.clientAddr(peer, h)
		if got == peer {
			return
		}
		found := false
		for e := range forwardedEntries(h, cfg.Header) {
			if a, ok := e.addr(); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("%v is neither the peer nor in %q", got, line)
		}
	})
}
