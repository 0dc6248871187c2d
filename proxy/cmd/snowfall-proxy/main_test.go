package main

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{"1000", 1000, true},
		{"500K", 500000, true},
		{"2m", 2000000, true},
		{"1G", 1000000000, true},
		{"-1", 0, false},
		{"1.5M", 0, false},
		{"M", 0, false},
		{"10X", 0, false},
		{"99999999999999999999G", 0, false},
	} {
		got, err := parseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseRate(%q) = %d, %v", tt.in, got, err)
		}
	}
}

func TestFlagsToConfig(t *testing.T) {
	o, err := parseFlags([]string{
		"-capacity", "3", "-stun", "stun:a:1, stun:b:2", "-broker", "http://127.0.0.1:1/",
		"-relay", "ws://127.0.0.1:2/", "-allowed-relay-hostname-pattern", "^127.0.0.1$",
		"-allow-non-tls-relay", "-allow-proxying-to-private-addresses", "-nat-retest-interval", "0",
		"-summary-interval", "10m", "-ephemeral-ports-range", "30000:30100", "-poll-interval", "3s",
		"-outbound-address", "203.0.113.5", "-bandwidth-limit", "1M", "-nat-type-force-unrestricted",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, w, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Capacity != 3 || len(c.STUNURLs) != 2 || c.STUNURLs[1] != "stun:b:2" || c.BrokerURL != "http://127.0.0.1:1/" ||
		c.RelayURL != "ws://127.0.0.1:2/" || c.Policy.Pattern != "^127.0.0.1$" || !c.Policy.AllowNonTLS ||
		!c.Policy.AllowPrivate || c.NATRetestInterval >= 0 || c.SummaryInterval != 10*time.Minute ||
		w.PortMin != 30000 || w.PortMax != 30100 || c.PollInterval != 3*time.Second ||
		w.OutboundAddress != netip.MustParseAddr("203.0.113.5") || c.BandwidthLimit != 1000000 ||
		c.ForceNATType != "unrestricted" || len(w.STUNURLs) != 2 || c.PeerFactory == nil {
		t.Errorf("config %+v", c)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-allowed-relay-hostname-pattern", "snowflake.torproject.net"},
		{"-outbound-address", "1.2.3.4", "-keep-local-addresses"},
		{"-outbound-address", "nope"},
		{"-ephemeral-ports-range", "5:1"},
		{"-poll-interval", "1s"},
		{"-bandwidth-limit", "fast"},
	} {
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if _, _, err := o.config(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseFlags([]string{"-no-such-flag"}, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
	var stderr bytes.Buffer
	if code := run([]string{"-allowed-relay-hostname-pattern", "x"}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `must end in "$"`) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "snowfall-proxy ") {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

func TestDisableStatsLogger(t *testing.T) {
	o, _ := parseFlags([]string{"-disable-stats-logger"}, io.Discard)
	c, _, _ := o.config()
	if c.SummaryInterval >= 0 {
		t.Errorf("summary interval %v", c.SummaryInterval)
	}
}
