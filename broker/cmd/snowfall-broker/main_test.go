package main

import (
	"strings"
	"testing"
)

func TestTLSMode(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mode string
		err  string
	}{
		{nil, "", "is required"},
		{[]string{"-disable-tls"}, "-disable-tls", ""},
		{[]string{"-acme-hostnames", "a.example"}, "-acme-hostnames", ""},
		{[]string{"-acme-hostnames", "a.example", "-acme-email", "x@a.example"}, "-acme-hostnames", ""},
		{[]string{"-cert", "c.pem", "-key", "k.pem"}, "-cert/-key", ""},
		{[]string{"-cert", "c.pem"}, "", "together"},
		{[]string{"-key", "k.pem", "-disable-tls"}, "", "together"},
		{[]string{"-acme-email", "x@a.example", "-disable-tls"}, "", "needs -acme-hostnames"},
		{[]string{"-disable-tls", "-acme-hostnames", "a"}, "", "cannot be combined"},
		{[]string{"-cert", "c", "-key", "k", "-acme-hostnames", "a"}, "", "cannot be combined"},
	} {
		o, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		mode, err := o.tlsMode()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || mode != tc.mode {
			t.Errorf("%v: %q %v", tc.args, mode, err)
		}
	}
}

func TestFlagDefaults(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":443" || o.acmeCache != "acme-cert-cache" || o.geoipDB != "/usr/share/tor/geoip" ||
		o.geoip6DB != "/usr/share/tor/geoip6" || o.allowedRelayPattern != "" || o.ipCountInterval.String() != "1h0m0s" {
		t.Fatalf("%+v", o)
	}
	if _, err := parseFlags([]string{"-disable-tls", "extra"}); err == nil {
		t.Fatal("stray argument accepted")
	}
	if _, err := parseFlags([]string{"-no-such-flag"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for _, args := range [][]string{
		{"-disable-tls", "-disable-geoip", "-bridge-list-path", "/nonexistent"},
		{"-disable-tls", "-geoipdb", "/nonexistent"},
		{"-disable-tls", "-disable-geoip", "-allowed-relay-pattern", "^other.example$", "-addr", "127.0.0.1:0"},
		{"-cert", "/nonexistent.pem", "-key", "/nonexistent.key", "-disable-geoip", "-addr", "127.0.0.1:0"},
	} {
		o, err := parseFlags(args)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(o); err == nil {
			t.Errorf("%v: started", args)
		}
	}
}

func TestForwardedFlags(t *testing.T) {
	o, _ := parseFlags([]string{"-trusted-proxies", "203.0.113.0/24, 2001:db8::1", "-forwarded-header", "forwarded"})
	fc, err := o.forwarded()
	if err != nil || fc.Header != "Forwarded" || len(fc.Proxies) != 2 || fc.Proxies[1].Bits() != 128 {
		t.Fatalf("%+v %v", fc, err)
	}
	for _, args := range [][]string{
		{"-forwarded-header", "X-Real-IP"},
		{"-trusted-hops", "0"},
		{"-trusted-proxies", "not-a-network"},
	} {
		o, _ := parseFlags(args)
		if _, err := o.forwarded(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestRunRefusesPublicDebugAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.0.2.1:6060", "localhost:6060"} {
		o, err := parseFlags([]string{"-disable-tls", "-disable-geoip", "-addr", "127.0.0.1:0", "-debug-addr", addr})
		if err != nil {
			t.Fatal(err)
		}
		if err := run(o); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("-debug-addr %s: %v", addr, err)
		}
	}
}
