package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/proxy"
)

// Browser defaults, as in Tor's browser proxy (snowflake-webext): a poll a
// minute, slower by 100 s after each client that never connected (up to
// 6 h), a NAT recheck every two days.
const (
	DefaultPollInterval      = 60 * time.Second
	DefaultSlowestPoll       = 6 * time.Hour
	DefaultPollAdjustment    = 100 * time.Second
	DefaultNATRetestInterval = 48 * time.Hour
	DefaultProxyType         = "badge"
	DefaultNATProbeURL       = "https://snowflake-broker.torproject.net:8443/probe"
)

// maxConfig bounds a configuration document.
const maxConfig = 64 * 1024

// Duration is a time.Duration in JSON: a Go duration string ("60s") or a
// number of milliseconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := parseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration: want a string like \"60s\" or milliseconds: %w", err)
	}
	if ms < 0 || ms > float64(365*24*time.Hour/time.Millisecond) {
		return fmt.Errorf("duration %v ms out of range", ms)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// parseDuration reads "60s" or a plain number of milliseconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q: negative", s)
	}
	return v, nil
}

// PageConfig is the browser proxy's configuration, read by the page from
// config.json next to it and, when that file allows it, from the page's
// query parameters. Zero values mean the defaults.
type PageConfig struct {
	Broker            string   `json:"broker,omitempty"`
	Relay             string   `json:"relay,omitempty"`
	RelayPattern      string   `json:"relayPattern,omitempty"`
	AllowNonTLSRelay  bool     `json:"allowNonTLSRelay,omitempty"`
	AllowPrivateRelay bool     `json:"allowPrivateRelay,omitempty"`
	STUN              []string `json:"stun,omitempty"`
	NATProbe          string   `json:"natProbe,omitempty"`
	// ForceNAT skips the NAT probe ("unknown", "restricted",
	// "unrestricted").
	ForceNAT string `json:"forceNAT,omitempty"`
	// ProxyType is reported to the broker: "badge" (a web page, the
	// default) or "webext".
	ProxyType string `json:"proxyType,omitempty"`
	// Capacity is the number of clients served at once; 0 chooses like
	// Tor's browser proxy: 1, or 2 when the NAT is unrestricted.
	Capacity int `json:"capacity,omitempty"`

	PollInterval       Duration `json:"pollInterval,omitempty"`
	FastPollInterval   Duration `json:"fastPollInterval,omitempty"`
	SlowestPoll        Duration `json:"slowestPollInterval,omitempty"`
	PollAdjustment     Duration `json:"pollAdjustment,omitempty"`
	NATRetestInterval  Duration `json:"natRetestInterval,omitempty"`
	DataChannelTimeout Duration `json:"dataChannelTimeout,omitempty"`
	InactivityTimeout  Duration `json:"inactivityTimeout,omitempty"`
	// BandwidthLimit caps relayed bytes per second (all clients); 0 is
	// unlimited.
	BandwidthLimit int64 `json:"bandwidthLimit,omitempty"`

	KeepLocalAddresses bool `json:"keepLocalAddresses,omitempty"`
	// UnsafeLogging keeps IP addresses in the console log.
	UnsafeLogging bool `json:"unsafeLogging,omitempty"`
	// Debug logs at debug level.
	Debug bool `json:"debug,omitempty"`
	// AllowQueryOverrides lets the page's query parameters change the
	// settings above. Off by default: otherwise anyone could send a
	// volunteer a link that points the proxy at a broker and relays of
	// their choosing.
	AllowQueryOverrides bool `json:"allowQueryOverrides,omitempty"`
}

// ParsePageConfig decodes a configuration document. Unknown keys are errors,
// so that a typo does not silently fall back to a default.
func ParsePageConfig(data []byte) (PageConfig, error) {
	var c PageConfig
	if len(data) > maxConfig {
		return c, errors.New("configuration too large")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	if dec.More() {
		return c, errors.New("configuration: trailing data")
	}
	return c, nil
}

// withDefaults fills in the browser defaults and checks what the core does
// not check.
func (c PageConfig) withDefaults() (PageConfig, error) {
	if c.ProxyType == "" {
		c.ProxyType = DefaultProxyType
	}
	if c.NATProbe == "" {
		c.NATProbe = DefaultNATProbeURL
	}
	if c.PollInterval == 0 {
		c.PollInterval = Duration(DefaultPollInterval)
	}
	if time.Duration(c.PollInterval) < proxy.MinPollInterval {
		return c, fmt.Errorf("pollInterval %v: at least %v", time.Duration(c.PollInterval), proxy.MinPollInterval)
	}
	if c.FastPollInterval == 0 {
		// Tor halves the minute for unrestricted proxies; keep that ratio
		// for other intervals (tests poll every few seconds).
		c.FastPollInterval = Duration(max(time.Duration(c.PollInterval)/2, proxy.MinPollInterval))
	}
	c.FastPollInterval = Duration(min(max(time.Duration(c.FastPollInterval), proxy.MinPollInterval), time.Duration(c.PollInterval)))
	if c.SlowestPoll == 0 {
		c.SlowestPoll = Duration(DefaultSlowestPoll)
	}
	c.SlowestPoll = max(c.SlowestPoll, c.PollInterval)
	if c.PollAdjustment == 0 {
		c.PollAdjustment = Duration(DefaultPollAdjustment)
	}
	if c.NATRetestInterval == 0 {
		c.NATRetestInterval = Duration(DefaultNATRetestInterval)
	}
	if c.Capacity < 0 || c.Capacity > 16 {
		return c, fmt.Errorf("capacity %d: want 0 (automatic) to 16", c.Capacity)
	}
	if c.ForceNAT != "" {
		if _, err := nattype.Parse(c.ForceNAT); err != nil {
			return c, fmt.Errorf("forceNAT %q: want unknown, restricted or unrestricted", c.ForceNAT)
		}
	}
	switch c.ProxyType {
	case "badge", "webext":
	default:
		return c, fmt.Errorf("proxyType %q: want badge or webext", c.ProxyType)
	}
	return c, nil
}

// proxyConfig returns the core's configuration. The platform edges are
// left to the caller.
func (c PageConfig) proxyConfig() proxy.Config {
	pc := proxy.Config{
		BrokerURL: c.Broker,
		RelayURL:  c.Relay,
		Policy: proxy.RelayPolicy{
			Pattern:      c.RelayPattern,
			AllowNonTLS:  c.AllowNonTLSRelay,
			AllowPrivate: c.AllowPrivateRelay,
		},
		STUNURLs: c.STUN,
		// Capacity and polling are the browser PollPolicy's
		// (pollpolicy.go); Capacity and PollInterval do not apply.
		ProxyType:          c.ProxyType,
		KeepLocalAddresses: c.KeepLocalAddresses,
		NATProbeURL:        c.NATProbe,
		NATRetestInterval:  time.Duration(c.NATRetestInterval),
		ForceNATType:       c.ForceNAT,
		// The page shows traffic; no periodic log line is needed.
		SummaryInterval:    -1,
		BandwidthLimit:     c.BandwidthLimit,
		DataChannelTimeout: time.Duration(c.DataChannelTimeout),
		InactivityTimeout:  time.Duration(c.InactivityTimeout),
	}
	return pc
}
