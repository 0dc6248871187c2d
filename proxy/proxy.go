package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
)

// Timeouts of one broker exchange. The broker holds a poll for up to 10 s.
const (
	pollTimeout   = 45 * time.Second
	answerTimeout = 20 * time.Second
	relayDialTime = 20 * time.Second
)

// Proxy is a running proxy. Create it with New and run it with Run.
type Proxy struct {
	cfg          Config
	log          *slog.Logger
	broker       *brokerClient
	poster       Poster
	pf           PeerFactory
	dialer       RelayDialer
	store        Store
	obs          Observer
	policy       PollPolicy
	defaultRelay *url.URL
	limiter      *rate.Limiter
	wake         chan struct{} // capacity 1: a client ended, or PollNow
	minPoll      time.Duration // least time between polls (tests lower it)

	active atomic.Int64 // clients being served (from match to end)
	// relayFailures counts consecutive failed relay dials, for the log;
	// the PollPolicy decides what they do to polling.
	relayFailures atomic.Int32
	natMu         sync.Mutex
	nat           string

	statsMu sync.Mutex
	period  Stats // since the last summary line
	total   Stats // since start
}

// Stats counts served connections and relayed bytes.
type Stats struct {
	// Connections is the number of relayed connections that have ended.
	Connections int64
	// FromClient and ToClient are bytes relayed in each direction.
	FromClient, ToClient int64
	// Timeouts counts clients whose data channel never opened.
	Timeouts int64
}

// New checks cfg, fills in defaults and returns a proxy ready to Run.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, pf: cfg.PeerFactory, dialer: cfg.RelayDialer, store: cfg.Store,
		obs: cfg.Observer, policy: cfg.PollPolicy, poster: cfg.Poster, wake: make(chan struct{}, 1), minPoll: MinPollInterval}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.pf == nil {
		return nil, ErrNoPeerFactory
	}
	if p.poster == nil {
		if p.poster = defaultPoster(); p.poster == nil {
			return nil, ErrNoPoster
		}
	}
	if p.dialer == nil {
		if p.dialer = defaultDialer(); p.dialer == nil {
			return nil, ErrNoRelayDialer
		}
	}
	p.broker, err = newBrokerClient(cfg.BrokerURL, p.poster, cfg.ProxyType, cfg.Policy.Pattern)
	if err != nil {
		return nil, err
	}
	if p.store == nil {
		p.store = &MemStore{}
	}
	if p.obs == nil {
		p.obs = NopObserver{}
	}
	if p.policy == nil {
		p.policy = NewStandalonePolicy(cfg.Capacity, cfg.PollInterval)
	}
	p.defaultRelay, err = url.Parse(cfg.RelayURL)
	if err != nil {
		return nil, fmt.Errorf("relay URL: %w", err)
	}
	p.limiter = newLimiter(cfg.BandwidthLimit)
	p.nat = nattype.Unknown
	if cfg.ForceNATType != "" {
		p.nat = cfg.ForceNATType
	} else if v, ok := p.store.Get(StoreKeyNATType); ok {
		if t, err := nattype.Parse(v); err == nil {
			p.nat = t
		}
	}
	return p, nil
}

// NATType returns the NAT type the proxy currently reports.
func (p *Proxy) NATType() string {
	p.natMu.Lock()
	defer p.natMu.Unlock()
	return p.nat
}

func (p *Proxy) setNATType(t string) {
	p.natMu.Lock()
	changed := p.nat != t
	p.nat = t
	p.natMu.Unlock()
	if changed {
		if err := p.store.Set(StoreKeyNATType, t); err != nil {
			p.log.Warn("cannot save NAT type", "err", err)
		}
	}
	p.obs.NATTypeChanged(t)
}

// Clients returns the number of clients being served now.
func (p *Proxy) Clients() int { return int(p.active.Load()) }

// Stats returns the totals since the proxy started.
func (p *Proxy) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.total
}

// Run serves clients until ctx ends. It measures the NAT type first (at
// most about 50 s), then polls the broker while capacity is free.
func (p *Proxy) Run(ctx context.Context) error {
	p.log.Info("Proxy starting", "broker", p.cfg.BrokerURL, "capacity", p.cfg.Capacity)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if p.cfg.ForceNATType != "" {
		p.setNATType(p.cfg.ForceNATType)
		p.log.Info("NAT type: " + p.cfg.ForceNATType + " (forced)")
	} else {
		p.measureNAT(ctx)
		if p.cfg.NATRetestInterval > 0 {
			wg.Go(func() { p.every(ctx, p.cfg.NATRetestInterval, func() { p.measureNAT(ctx) }) })
		}
	}
	if p.cfg.SummaryInterval > 0 {
		wg.Go(func() { p.every(ctx, p.cfg.SummaryInterval, p.logSummary) })
	}
	p.pollLoop(ctx, &wg)
	return nil
}

// every calls fn every d until ctx ends.
func (p *Proxy) every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func (p *Proxy) measureNAT(ctx context.Context) {
	res, err := ProbeNAT(ctx, p.pf, p.poster, p.cfg.NATProbeURL, p.cfg.GatherTimeout, p.cfg.KeepLocalAddresses)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("NAT probe failed; keeping the previous NAT type", "nat", p.NATType(), "err", err)
			// Still report it, so that observers see a value at start.
			p.setNATType(p.NATType())
		}
		return
	}
	t := nextNATType(p.NATType(), res.Type)
	p.setNATType(t)
	p.log.Info("NAT type: " + t)
}

// PollNow makes the proxy ask its PollPolicy again at once, e.g. after
// the policy was told to retry.
func (p *Proxy) PollNow() { signal(p.wake) }

// signal wakes the receiver of ch (capacity 1) without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitWake waits d (forever when negative) or until the proxy is woken or
// ctx ends, reporting whether ctx is still live.
func (p *Proxy) waitWake(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.wake:
	case <-timeout:
	}
	return true
}

// pollLoop polls the broker until ctx ends, starting a goroutine (tracked
// by wg) for each client it is given. Only this loop adds clients, so a
// free slot seen here stays free until the poll's reply.
func (p *Proxy) pollLoop(ctx context.Context, wg *sync.WaitGroup) {
	failures := 0
	var last time.Time // when the last poll went out
	for {
		d := p.policy.Delay(time.Now())
		// Whatever the policy says, polls are at least MinPollInterval
		// apart, so that no policy can make volunteers hammer a broker.
		d = max(d, p.minPoll-time.Since(last))
		if d > 0 {
			if !p.waitWake(ctx, d) {
				return
			}
			continue
		}
		nat := p.policy.NAT(p.NATType())
		if limit := p.policy.Capacity(nat); limit > 0 && p.active.Load() >= int64(limit) {
			// Full: a client's end (or PollNow) wakes us.
			if !p.waitWake(ctx, -1) {
				return
			}
			continue
		}
		sid := newSid()
		last = time.Now()
		p.obs.PollSent()
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		resp, err := p.broker.poll(pctx, sid, nat, int(p.active.Load()))
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.policy.Polled(time.Now(), PollResult{Reply: resp, Err: err})
		retry := func() time.Duration { return max(p.policy.Delay(time.Now()), 0).Round(time.Millisecond) }
		switch {
		case err == nil:
			if failures > 0 {
				p.log.Info("broker reachable again", "failed_polls", failures)
			}
			failures = 0
			if resp.Status == messages.StatusMatch {
				p.active.Add(1)
				wg.Go(func() {
					defer signal(p.wake)
					defer p.active.Add(-1)
					p.serve(ctx, sid, resp)
				})
			}
		case errors.Is(err, ErrRelayPatternRejected):
			failures++
			p.log.Error("broker rejected our relay pattern: it only has relays outside -allowed-relay-hostname-pattern; check the pattern",
				"pattern", p.cfg.Policy.Pattern, "retry_in", retry())
		default:
			failures++
			p.log.Warn("broker poll failed; backing off", "broker", p.cfg.BrokerURL,
				"consecutive_failures", failures, "retry_in", retry(), "err", err)
		}
	}
}

// relayFor returns the relay to use for a broker-supplied URL (empty for
// the default) and the address check for dialling it.
func (p *Proxy) relayFor(brokerURL string) (*url.URL, func(netip.Addr) error, error) {
	if brokerURL == "" {
		// The operator's own relay: trusted as configured.
		return p.defaultRelay, nil, nil
	}
	u, err := p.cfg.Policy.Check(brokerURL)
	if err != nil {
		return nil, nil, err
	}
	return u, p.cfg.Policy.CheckAddr, nil
}

// clientOffer is what the proxy takes from a broker's match.
type clientOffer struct {
	sdp        string
	relay      *url.URL
	checkAddr  func(netip.Addr) error // nil for the operator's own relay
	clientAddr netip.Addr
	haveAddr   bool
}

// parseMatch vets a broker's match: the offer must be an SDP offer and
// the relay must pass the policy. Everything a broker controls goes
// through here before any resource is spent on it.
func (p *Proxy) parseMatch(resp *messages.ProxyPollResponse) (*clientOffer, error) {
	offer, err := sdpwire.Decode(resp.Offer)
	if err != nil {
		return nil, fmt.Errorf("bad offer from broker: %w", err)
	}
	if offer.Type != sdpwire.TypeOffer {
		return nil, fmt.Errorf("broker sent a %s, not an offer", offer.Type)
	}
	if offer.SDP == "" {
		return nil, errors.New("broker sent an empty offer")
	}
	co := &clientOffer{sdp: offer.SDP}
	co.relay, co.checkAddr, err = p.relayFor(resp.RelayURL)
	if err != nil {
		return nil, fmt.Errorf("relay refused by policy: %w", err)
	}
	co.clientAddr, co.haveAddr = iceaddr.ClientAddr(offer.SDP)
	return co, nil
}

// serve handles one client offer from the broker: answer, wait for the data
// channel, dial the relay and copy until either side ends.
func (p *Proxy) serve(ctx context.Context, sid string, resp *messages.ProxyPollResponse) {
	log := p.log.With("sid", sid)
	co, err := p.parseMatch(resp)
	if err != nil {
		// The client is left to time out at the broker; sending no answer
		// is how Tor's proxy refuses a relay too.
		log.Warn("dropping client", "err", err)
		return
	}
	relayURL, checkAddr, clientAddr, haveAddr := co.relay, co.checkAddr, co.clientAddr, co.haveAddr
	if !p.cfg.KeepLocalAddresses {
		var dropped int
		if co.sdp, dropped = publicCandidatesOnly(co.sdp); dropped > 0 {
			log.Debug("dropped the client's non-public candidates", "count", dropped)
		}
	}

	gctx, cancel := context.WithTimeout(ctx, p.cfg.GatherTimeout)
	peer, err := p.pf.NewAnswerer(gctx, co.sdp)
	cancel()
	if err != nil {
		log.Warn("dropping client: cannot answer offer", "err", err)
		return
	}
	defer peer.Close()
	answerSDP := peer.Answer()
	answerSDP = iceaddr.Redact(answerSDP, p.cfg.KeepLocalAddresses)
	answer, err := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeAnswer, SDP: answerSDP})
	if err != nil {
		log.Warn("dropping client: cannot encode answer", "err", err)
		return
	}
	actx, cancel := context.WithTimeout(ctx, answerTimeout)
	err = p.broker.answer(actx, sid, answer)
	cancel()
	if err != nil {
		log.Info("answer not delivered", "err", err)
		return
	}

	octx, cancel := context.WithTimeout(ctx, p.cfg.DataChannelTimeout)
	conn, err := peer.Accept(octx)
	cancel()
	if ctx.Err() == nil {
		p.policy.ClientConnected(resp.NAT, err == nil)
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Debug("client's data channel did not open", "timeout", p.cfg.DataChannelTimeout, "err", err)
			p.obs.ConnectionTimedOut()
			p.statsMu.Lock()
			p.period.Timeouts++
			p.total.Timeouts++
			p.statsMu.Unlock()
		}
		return
	}
	defer conn.Close()

	target := withClientIP(relayURL, clientAddr, haveAddr)
	dctx, cancel := context.WithTimeout(ctx, relayDialTime)
	bridge, err := p.dialer.DialRelay(dctx, target, checkAddr)
	cancel()
	if ctx.Err() != nil {
		if bridge != nil {
			bridge.Close()
		}
		return
	}
	p.policy.RelayDialed(err)
	if err != nil {
		n := p.relayFailures.Add(1)
		log.Warn("cannot reach relay; closing client and slowing polls", "relay", relayURL.Redacted(),
			"consecutive_relay_failures", n, "err", err)
		return
	}
	if p.relayFailures.Swap(0) > 0 {
		log.Info("relay reachable again", "relay", relayURL.Redacted())
	}
	log.Debug("relaying", "client", clientAddr, "relay", relayURL.Redacted())
	var info ConnInfo
	if haveAddr {
		info.ClientAddr = clientAddr
	}
	p.obs.ConnectionStarted(info)
	start := time.Now()
	var st relayStats
	err = relay(ctx, conn, bridge, p.cfg.InactivityTimeout, p.limiter, &st, p.obs)
	info.FromClient, info.ToClient, info.Duration = st.fromClient.Load(), st.toClient.Load(), time.Since(start)
	log.Debug("connection ended", "from_client", info.FromClient, "to_client", info.ToClient,
		"duration", info.Duration.Round(time.Millisecond), "reason", errString(err))
	p.statsMu.Lock()
	for _, s := range []*Stats{&p.period, &p.total} {
		s.Connections++
		s.FromClient += info.FromClient
		s.ToClient += info.ToClient
	}
	p.statsMu.Unlock()
	p.obs.ConnectionEnded(info)
}

func errString(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}

// logSummary writes Tor's periodic summary line. "↑" is traffic towards
// the client and "↓" traffic from it, in KB of 1000 bytes, as Tor counts.
func (p *Proxy) logSummary() {
	p.statsMu.Lock()
	s := p.period
	p.period = Stats{}
	p.statsMu.Unlock()
	p.log.Info(summaryLine(p.cfg.SummaryInterval, s))
}

func summaryLine(interval time.Duration, s Stats) string {
	return fmt.Sprintf("In the last %v, there were %d connections. Traffic Relayed ↑ %d KB, ↓ %d KB.",
		interval, s.Connections, s.ToClient/1000, s.FromClient/1000)
}
