package main

import (
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/proxy"
)

func TestParsePageConfig(t *testing.T) {
	c, err := ParsePageConfig([]byte(`{"broker":"http://b/","stun":["stun:s:3478"],"pollInterval":"2s",
		"fastPollInterval":1500,"capacity":2,"allowNonTLSRelay":true,"proxyType":"webext"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker != "http://b/" || len(c.STUN) != 1 || time.Duration(c.PollInterval) != 2*time.Second ||
		time.Duration(c.FastPollInterval) != 1500*time.Millisecond || c.Capacity != 2 || !c.AllowNonTLSRelay {
		t.Errorf("parsed %+v", c)
	}
	c, err = c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// A fast interval below the core's minimum is raised to it.
	if time.Duration(c.FastPollInterval) != proxy.MinPollInterval {
		t.Errorf("fast interval %v, want %v", time.Duration(c.FastPollInterval), proxy.MinPollInterval)
	}
	pc := c.proxyConfig()
	// Capacity and polling are the browser policy's, not the core's.
	if pc.ProxyType != "webext" || pc.Capacity != 0 || pc.PollInterval != 0 || !pc.Policy.AllowNonTLS {
		t.Errorf("core config %+v", pc)
	}
}

func TestPageConfigDefaults(t *testing.T) {
	c, err := ParsePageConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.ProxyType != "badge" || time.Duration(c.PollInterval) != time.Minute ||
		time.Duration(c.FastPollInterval) != 30*time.Second || time.Duration(c.SlowestPoll) != 6*time.Hour ||
		time.Duration(c.PollAdjustment) != 100*time.Second || time.Duration(c.NATRetestInterval) != 48*time.Hour {
		t.Errorf("defaults %+v", c)
	}
	if pc := c.proxyConfig(); pc.Capacity != 0 || pc.NATRetestInterval != 48*time.Hour || pc.SummaryInterval >= 0 {
		t.Errorf("core config %+v", pc)
	}
}

func TestPageConfigErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"brokr":"x"}`, "unknown field"},
		{`{"pollInterval":"1s"}`, "at least"},
		{`{"pollInterval":"-5s"}`, "negative"},
		{`{"pollInterval":"soon"}`, "duration"},
		{`{"pollInterval":-1}`, "out of range"},
		{`{"capacity":-1}`, "capacity"},
		{`{"capacity":100}`, "capacity"},
		{`{"proxyType":"standalone"}`, "proxyType"},
		{`{"forceNAT":"open"}`, "forceNAT"},
		{`{} {}`, "trailing"},
		{`[1]`, "configuration"},
		{`{"broker":"` + strings.Repeat("a", maxConfig) + `"}`, "too large"},
	} {
		c, err := ParsePageConfig([]byte(tc.doc))
		if err == nil {
			_, err = c.withDefaults()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40s: error %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}

func FuzzParsePageConfig(f *testing.F) {
	f.Add([]byte(`{"broker":"http://b/","pollInterval":"2s","capacity":1}`))
	f.Add([]byte(`{"pollInterval":1e300}`))
	f.Add([]byte(`{"stun":null,"natRetestInterval":"0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParsePageConfig(data)
		if err != nil {
			return
		}
		c, err = c.withDefaults()
		if err != nil {
			return
		}
		if time.Duration(c.PollInterval) < proxy.MinPollInterval || c.FastPollInterval > c.PollInterval ||
			c.SlowestPoll < c.PollInterval {
			t.Fatalf("inconsistent intervals %+v", c)
		}
		_ = c.proxyConfig()
	})
}
