// Package mobile wraps the proxy in an API that gomobile can bind for
// Android and iOS apps: only strings, integers, errors and a callback
// interface cross the boundary.
package mobile

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/proxy"
	"github.com/snowfall-pt/snowfall/proxy/pionpeer"
)

// Logger receives log lines (already scrubbed of IP addresses).
type Logger interface {
	Log(line string)
}

// Settings configures a Proxy; empty fields take Tor's defaults.
type Settings struct {
	BrokerURL   string
	RelayURL    string
	STUNURLs    string // comma-separated
	NATProbeURL string
	Capacity    int
	// StateFile, when set, keeps the NAT type across restarts.
	StateFile string
}

// Proxy is a proxy that an app starts and stops.
type Proxy struct {
	p      *proxy.Proxy
	cancel context.CancelFunc
	done   chan struct{}
}

// NewSettings returns settings with all defaults.
func NewSettings() *Settings { return &Settings{} }

// Start starts a proxy with s, logging to log (may be nil).
func Start(s *Settings, log Logger) (*Proxy, error) {
	if s == nil {
		s = &Settings{}
	}
	cfg := proxy.Config{
		BrokerURL: s.BrokerURL, RelayURL: s.RelayURL, NATProbeURL: s.NATProbeURL,
		Capacity: s.Capacity, ProxyType: "iptproxy",
	}
	if err := withPion(&cfg, s.STUNURLs); err != nil {
		return nil, err
	}
	if log != nil {
		cfg.Logger = safelog.NewLogger(lineWriter{log}, slog.LevelInfo, false)
	}
	if s.StateFile != "" {
		st, err := proxy.OpenFileStore(s.StateFile)
		if err != nil {
			return nil, err
		}
		cfg.Store = st
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	mp := &Proxy{p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(mp.done)
		p.Run(ctx)
	}()
	return mp, nil
}

// Stop stops the proxy and waits for its connections to close.
func (m *Proxy) Stop() {
	m.cancel()
	<-m.done
}

// NATType returns "unknown", "restricted" or "unrestricted".
func (m *Proxy) NATType() string { return m.p.NATType() }

// Clients returns the number of clients being served.
func (m *Proxy) Clients() int { return m.p.Clients() }

// Connections returns the number of connections served since Start.
func (m *Proxy) Connections() int64 { return m.p.Stats().Connections }

// BytesRelayed returns the bytes relayed in both directions since Start.
func (m *Proxy) BytesRelayed() int64 {
	s := m.p.Stats()
	return s.FromClient + s.ToClient
}

// SelfTest runs the proxy self-test with s and returns its checklist; the
// error is set when a check failed.
func SelfTest(s *Settings) (string, error) {
	if s == nil {
		s = &Settings{}
	}
	cfg := proxy.Config{BrokerURL: s.BrokerURL, RelayURL: s.RelayURL, NATProbeURL: s.NATProbeURL}
	if err := withPion(&cfg, s.STUNURLs); err != nil {
		return "", err
	}
	rep, err := proxy.SelfTest(context.Background(), cfg)
	if err != nil {
		return "", err
	}
	if !rep.OK() {
		return rep.String(), errors.New("self-test failed")
	}
	return rep.String(), nil
}

// withPion sets cfg's STUN servers from a comma-separated list and gives it
// pion's WebRTC with them.
func withPion(cfg *proxy.Config, stun string) error {
	for _, u := range strings.Split(stun, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.STUNURLs = append(cfg.STUNURLs, u)
		}
	}
	urls := cfg.STUNURLs
	if urls == nil {
		urls = []string{proxy.DefaultSTUNURL}
	}
	pf, err := pionpeer.New(pionpeer.Config{STUNURLs: urls})
	if err != nil {
		return err
	}
	cfg.PeerFactory = pf
	return nil
}

// lineWriter turns log output into one callback per line.
type lineWriter struct{ l Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.l.Log(line)
		}
	}
	return len(p), nil
}
