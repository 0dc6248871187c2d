package proxy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRelayPolicyCheck(t *testing.T) {
	def := RelayPolicy{}
	tests := []struct {
		name   string
		policy RelayPolicy
		url    string
		want   error // nil: accepted
	}{
		{"default relay", def, "wss://snowflake.torproject.net/", nil},
		{"subdomain", def, "wss://02.snowflake.torproject.net", nil},
		{"with port and path", def, "wss://a.snowflake.torproject.net:8443/x?y=z", nil},
		{"uppercase host", def, "wss://SNOWFLAKE.TorProject.NET/", nil},
		{"trailing dot", def, "wss://snowflake.torproject.net./", nil},
		{"no label boundary", def, "wss://evil-snowflake.torproject.net/", ErrRelayHost},
		{"suffix glued", def, "wss://evilsnowflake.torproject.net/", ErrRelayHost},
		{"pattern as prefix", def, "wss://snowflake.torproject.net.evil.com/", ErrRelayHost},
		{"other host", def, "wss://example.com/", ErrRelayHost},
		{"ws without flag", def, "ws://snowflake.torproject.net/", ErrRelayScheme},
		{"ws with flag", RelayPolicy{AllowNonTLS: true}, "ws://snowflake.torproject.net/", nil},
		{"http scheme", RelayPolicy{AllowNonTLS: true}, "http://snowflake.torproject.net/", ErrRelayScheme},
		{"https scheme", def, "https://snowflake.torproject.net/", ErrRelayScheme},
		{"no scheme", def, "snowflake.torproject.net", ErrRelayURL},
		{"empty", def, "", ErrRelayURL},
		{"opaque", def, "wss:snowflake.torproject.net", ErrRelayURL},
		{"userinfo", def, "wss://u:p@snowflake.torproject.net/", ErrRelayURL},
		{"garbage", def, "wss://%zz/", ErrRelayURL},
		{"empty port", def, "wss://snowflake.torproject.net:/", ErrRelayURL},

		// Addresses, with a pattern that lets them through to the address
		// check.
		{"loopback literal", RelayPolicy{Pattern: "$"}, "wss://127.0.0.1/", ErrRelayAddress},
		{"loopback literal exact pattern", RelayPolicy{Pattern: "^127.0.0.1$"}, "wss://127.0.0.1:8080/", ErrRelayAddress},
		{"private 10/8", RelayPolicy{Pattern: "$"}, "wss://10.1.2.3/", ErrRelayAddress},
		{"private 192.168", RelayPolicy{Pattern: "$"}, "wss://192.168.1.1/", ErrRelayAddress},
		{"private 172.16/12", RelayPolicy{Pattern: "$"}, "wss://172.31.255.255/", ErrRelayAddress},
		{"CGNAT", RelayPolicy{Pattern: "$"}, "wss://100.64.0.1/", ErrRelayAddress},
		{"link-local v4", RelayPolicy{Pattern: "$"}, "wss://169.254.169.254/", ErrRelayAddress},
		{"unspecified v4", RelayPolicy{Pattern: "$"}, "wss://0.0.0.0/", ErrRelayAddress},
		{"this network", RelayPolicy{Pattern: "$"}, "wss://0.1.2.3/", ErrRelayAddress},
		{"broadcast", RelayPolicy{Pattern: "$"}, "wss://255.255.255.255/", ErrRelayAddress},
		{"multicast v4", RelayPolicy{Pattern: "$"}, "wss://224.0.0.1/", ErrRelayAddress},
		{"loopback v6", RelayPolicy{Pattern: "$"}, "wss://[::1]/", ErrRelayAddress},
		{"unspecified v6", RelayPolicy{Pattern: "$"}, "wss://[::]/", ErrRelayAddress},
		{"link-local v6", RelayPolicy{Pattern: "$"}, "wss://[fe80::1]/", ErrRelayAddress},
		{"link-local v6 zone", RelayPolicy{Pattern: "$"}, "wss://[fe80::1%25eth0]/", ErrRelayAddress},
		{"ULA", RelayPolicy{Pattern: "$"}, "wss://[fd00::1]/", ErrRelayAddress},
		{"mapped loopback", RelayPolicy{Pattern: "$"}, "wss://[::ffff:127.0.0.1]/", ErrRelayAddress},
		{"NAT64 of private", RelayPolicy{Pattern: "$"}, "wss://[64:ff9b::a00:1]/", ErrRelayAddress},
		{"6to4 of private", RelayPolicy{Pattern: "$"}, "wss://[2002:c0a8:101::1]/", ErrRelayAddress},
		{"multicast v6", RelayPolicy{Pattern: "$"}, "wss://[ff02::1]/", ErrRelayAddress},
		{"public v4", RelayPolicy{Pattern: "$"}, "wss://8.8.8.8/", nil},
		{"public v6", RelayPolicy{Pattern: "$"}, "wss://[2001:4860:4860::8888]/", nil},
		{"NAT64 of public", RelayPolicy{Pattern: "$"}, "wss://[64:ff9b::808:808]/", nil},
		{"private allowed", RelayPolicy{Pattern: "$", AllowPrivate: true}, "wss://10.1.2.3/", nil},
		{"loopback allowed", RelayPolicy{Pattern: "^127.0.0.1$", AllowPrivate: true, AllowNonTLS: true}, "ws://127.0.0.1:9000/", nil},
		{"short numeric form", RelayPolicy{Pattern: "$"}, "wss://127.1/", ErrRelayURL},
		{"decimal form", RelayPolicy{Pattern: "$"}, "wss://2130706433/", ErrRelayURL},
		{"hex form", RelayPolicy{Pattern: "$"}, "wss://0x7f000001/", ErrRelayURL},
		{"pattern mismatch beats address", RelayPolicy{}, "wss://10.0.0.1/", ErrRelayHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.policy.Check(tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want accepted", tt.url, err)
				}
				if u == nil || u.Hostname() == "" {
					t.Fatalf("Check(%q) returned no URL", tt.url)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check(%q) = %v, want %v", tt.url, err, tt.want)
			}
		})
	}
}

func TestCheckAddr(t *testing.T) {
	strict := RelayPolicy{}
	lax := RelayPolicy{AllowPrivate: true}
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "::1", "fe80::1", "fc00::1", "100.64.1.1", "0.0.0.0", "::", "169.254.0.1", "::ffff:10.0.0.1", "240.0.0.1", "198.18.0.1"} {
		a := netip.MustParseAddr(s)
		if err := strict.CheckAddr(a); !errors.Is(err, ErrRelayAddress) {
			t.Errorf("strict CheckAddr(%s) = %v, want ErrRelayAddress", s, err)
		}
		if err := lax.CheckAddr(a); err != nil {
			t.Errorf("lax CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"1.1.1.1", "198.51.100.1", "2606:4700::1111"} {
		if err := strict.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	if err := strict.CheckAddr(netip.Addr{}); err == nil {
		t.Error("CheckAddr(invalid) accepted")
	}
}

// FuzzRelayPolicy checks that no input panics and that, with private
// addresses disallowed, no accepted URL names a non-public IP literal.
func FuzzRelayPolicy(f *testing.F) {
	for _, s := range []string{
		"wss://snowflake.torproject.net/", "ws://127.0.0.1:80/", "wss://[::1]/",
		"wss://[fe80::1%25eth0]:443/", "wss://10.0.0.1", "wss://a.b.c.snowflake.torproject.net:1/p?q#f",
		"wss://0x7f.1/", "wss://[::ffff:7f00:1]/", "wss://%5B::1%5D/", "wss://user@host/",
	} {
		f.Add(s, "$", true)
		f.Add(s, DefaultRelayPattern, false)
	}
	f.Fuzz(func(t *testing.T, raw, pattern string, nonTLS bool) {
		p := RelayPolicy{Pattern: pattern, AllowNonTLS: nonTLS}
		u, err := p.Check(raw)
		if err != nil {
			return
		}
		if u.Scheme != "wss" && !(nonTLS && u.Scheme == "ws") {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil && !isPublicAddr(a) {
			t.Fatalf("accepted non-public literal %s from %q", a, raw)
		}
		if strings.ContainsAny(host, "/@") {
			t.Fatalf("odd host %q accepted", host)
		}
	})
}

// TestRelayPolicyIDNA: names are judged in the form a URL parser gives
// them, so full-width digits cannot smuggle a private address past a broad
// pattern, and a matching name in another script still matches.
func TestRelayPolicyIDNA(t *testing.T) {
	broad := RelayPolicy{Pattern: "$"}
	for _, raw := range []string{
		"wss://１２７.０.０.１/",
		"wss://１２７．０．０．１/",
		"wss://１０.０.０.１:443/",
		"wss://①②⑦.0.0.1/",
		"wss://１２７.１/",
	} {
		if u, err := broad.Check(raw); err == nil {
			t.Errorf("%s accepted as %s", raw, u)
		}
	}
	p := RelayPolicy{Pattern: "snowflake.torproject.net$"}
	u, err := p.Check("wss://ＳＮＯＷＦＬＡＫＥ.torproject.net:８４４３/x")
	if err == nil {
		t.Errorf("a full-width port passed: %s", u)
	}
	u, err = p.Check("wss://ＳＮＯＷＦＬＡＫＥ.torproject.net/x")
	if err != nil || u.Host != "snowflake.torproject.net" {
		t.Errorf("full-width name: (%v, %v), want it mapped to snowflake.torproject.net", u, err)
	}
	if _, err := p.Check("wss://snowflake.torproject.net.evil。example/"); !errors.Is(err, ErrRelayHost) {
		t.Errorf("ideographic full stop: %v", err)
	}
	if _, err := (RelayPolicy{Pattern: "xn--bcher-kva.example$"}).Check("wss://relay.bücher.example/"); err != nil {
		t.Errorf("a matching internationalised name: %v", err)
	}
}
