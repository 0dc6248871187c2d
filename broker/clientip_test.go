package broker

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestForwardedAddr(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fwd, xff  []string
		want      string
		wantFound bool
	}{
		{"none", nil, nil, "", false},
		{"forwarded v4", []string{"for=198.51.100.7;proto=https"}, nil, "198.51.100.7", true},
		{"forwarded quoted v6 with port", []string{`for="[2001:db8:cafe::17]:4711"`}, nil, "2001:db8:cafe::17", true},
		{"forwarded skips private and obfuscated", []string{"for=10.0.0.1, for=_hidden, for=unknown", "For=203.0.113.9"}, nil, "203.0.113.9", true},
		{"forwarded leftmost public", []string{"for=203.0.113.1, for=198.51.100.2"}, nil, "203.0.113.1", true},
		{"forwarded beats xff", []string{"for=203.0.113.1"}, []string{"198.51.100.2"}, "203.0.113.1", true},
		{"xff", nil, []string{"192.168.1.1, 198.51.100.2, 203.0.113.3"}, "198.51.100.2", true},
		{"xff with port", nil, []string{"198.51.100.2:1234"}, "198.51.100.2", true},
		{"xff mapped", nil, []string{"::ffff:198.51.100.2"}, "198.51.100.2", true},
		{"only private", []string{"for=127.0.0.1"}, []string{"10.1.1.1, fc00::1, 100.64.0.1"}, "", false},
		{"garbage", []string{"for"}, []string{"x, , ;"}, "", false},
	} {
		h := http.Header{}
		for _, v := range tc.fwd {
			h.Add("Forwarded", v)
		}
		for _, v := range tc.xff {
			h.Add("X-Forwarded-For", v)
		}
		a, ok := forwardedAddr(h)
		if ok != tc.wantFound || (ok && a != netip.MustParseAddr(tc.want)) {
			t.Errorf("%s: %v %v, want %s %v", tc.name, a, ok, tc.want, tc.wantFound)
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
