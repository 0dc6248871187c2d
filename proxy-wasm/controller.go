package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/proxy"
)

// Phases shown by the page.
const (
	PhaseOff      = "off"
	PhaseStarting = "starting" // measuring the NAT type, checking the bridge
	PhaseWaiting  = "waiting"  // polling, nobody to help right now
	PhaseServing  = "serving"  // relaying for at least one person
	PhaseError    = "error"    // cannot work until the error clears
)

// Error kinds shown by the page.
const (
	ErrKindWebRTC  = "webrtc"  // the browser has no WebRTC
	ErrKindConfig  = "config"  // the configuration is unusable
	ErrKindBroker  = "broker"  // the broker cannot be reached
	ErrKindRelay   = "relay"   // the bridge cannot be reached
	ErrKindPattern = "pattern" // the broker only has bridges we refuse
)

// relayCheckTimeout bounds the check that the bridge is reachable.
const relayCheckTimeout = 10 * time.Second

// updateEvery is how often the page is told about changing counters.
const updateEvery = time.Second

// State is what the page shows. It is sent to the page as JSON.
type State struct {
	Running bool   `json:"running"`
	Phase   string `json:"phase"`
	// Clients is the number of people being helped now.
	Clients int `json:"clients"`
	// Helped24h, HelpedTotal: people helped in the last 24 hours and ever
	// (in this browser profile).
	Helped24h   int   `json:"helped24h"`
	HelpedTotal int64 `json:"helpedTotal"`
	// Bytes relayed since the proxy was switched on, per direction, and
	// ever.
	BytesToClients   int64 `json:"bytesToClients"`
	BytesFromClients int64 `json:"bytesFromClients"`
	BytesTotal       int64 `json:"bytesTotal"`
	// NAT is the NAT type reported to the broker; NATLearned says it was
	// learned from failed connections rather than measured.
	NAT        string `json:"nat"`
	NATLearned bool   `json:"natLearned,omitempty"`
	// PollInterval is the current interval (ms); NextPoll when the next
	// poll may go out (Unix ms, 0 when unknown).
	PollInterval int64 `json:"pollInterval"`
	NextPoll     int64 `json:"nextPoll"`
	Capacity     int   `json:"capacity"`
	// Counters since switched on.
	Polls             int64       `json:"polls"`
	Matches           int64       `json:"matches"`
	FailedConnections int64       `json:"failedConnections"`
	ProxyType         string      `json:"proxyType,omitempty"`
	Error             *StateError `json:"error,omitempty"`
}

// StateError is a problem the volunteer should see.
type StateError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// RetryAt is when the proxy tries again by itself (Unix ms), 0 if not.
	RetryAt int64 `json:"retryAt,omitempty"`
}

// platform is what the controller gets from the browser (or from a test).
type platform struct {
	// peers makes the WebRTC peer factory for the given STUN servers.
	peers     func(stun []string) proxy.PeerFactory
	dialer    proxy.RelayDialer
	transport http.RoundTripper
	store     proxy.Store
	// webrtc reports why WebRTC cannot be used, or nil.
	webrtc func() error
	logOut io.Writer
	now    func() time.Time
}

// controller runs the core for the page and keeps the state it shows.
type controller struct {
	plat platform

	notifyMu sync.Mutex
	notify   func(State)

	mu       sync.Mutex
	cfg      PageConfig
	sched    *schedule
	hist     *history
	px       *proxy.Proxy
	log      *slog.Logger
	running  bool
	cancel   context.CancelFunc
	done     chan struct{} // closed when the last run ended
	nat      string
	natKnown bool
	err      *StateError
	active   int    // people being relayed now
	matchNAT string // NAT type of the most recent client

	relayOK        bool
	relayFailures  int
	relayNextCheck time.Time

	wake chan struct{}

	// Session counters.
	toClients, fromClients      atomic.Int64
	liveTotal                   atomic.Int64 // bytes of running connections
	polls, matches, failedConns atomic.Int64
}

func newController(p platform) *controller {
	if p.now == nil {
		p.now = time.Now
	}
	if p.logOut == nil {
		p.logOut = io.Discard
	}
	c := &controller{plat: p, wake: make(chan struct{}, 1)}
	c.hist = loadHistory(p.store)
	c.nat = nattype.Unknown
	if v, ok := p.store.Get(proxy.StoreKeyNATType); ok {
		if t, err := nattype.Parse(v); err == nil {
			c.nat = t
		}
	}
	return c
}

// onUpdate sets the function told about every change of state.
func (c *controller) onUpdate(f func(State)) {
	c.notifyMu.Lock()
	c.notify = f
	c.notifyMu.Unlock()
	c.update()
}

// update tells the page the current state. It must be called without c.mu.
func (c *controller) update() {
	s := c.State()
	c.notifyMu.Lock()
	f := c.notify
	c.notifyMu.Unlock()
	if f != nil {
		f(s)
	}
}

// State returns what the page shows now.
func (c *controller) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.plat.now()
	s := State{
		Running:           c.running,
		Phase:             PhaseOff,
		Clients:           c.active,
		Helped24h:         c.hist.last24h(now),
		HelpedTotal:       c.hist.helpedTotal,
		BytesToClients:    c.toClients.Load(),
		BytesFromClients:  c.fromClients.Load(),
		NAT:               c.nat,
		Polls:             c.polls.Load(),
		Matches:           c.matches.Load(),
		FailedConnections: c.failedConns.Load(),
		Error:             c.err,
	}
	// Bytes of running connections are added to the total when they end.
	s.BytesTotal = c.hist.bytesTotal + c.liveBytes()
	if c.sched != nil {
		s.NAT = c.sched.effectiveNAT(c.nat)
		s.NATLearned = c.sched.learned != ""
		s.PollInterval = c.sched.interval.Milliseconds()
		if !c.sched.next.IsZero() {
			s.NextPoll = c.sched.next.UnixMilli()
		}
		s.Capacity = c.sched.limit(s.NAT)
		s.ProxyType = c.cfg.ProxyType
	}
	if c.running {
		switch {
		case c.active > 0:
			s.Phase = PhaseServing
		case c.err != nil:
			s.Phase = PhaseError
		case !c.natKnown || !c.relayOK:
			s.Phase = PhaseStarting
		default:
			s.Phase = PhaseWaiting
		}
	} else if c.err != nil {
		s.Phase = PhaseError
	}
	return s
}

// liveBytes is what running connections relayed so far; with c.mu held.
func (c *controller) liveBytes() int64 { return c.liveTotal.Load() }

// Start validates cfg and starts the proxy. It does not block.
func (c *controller) Start(cfg PageConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		c.setError(&StateError{Kind: ErrKindConfig, Message: err.Error()})
		return err
	}
	if c.plat.webrtc != nil {
		if err := c.plat.webrtc(); err != nil {
			c.setError(&StateError{Kind: ErrKindWebRTC, Message: err.Error()})
			return err
		}
	}
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := safelog.NewLogger(c.plat.logOut, level, cfg.UnsafeLogging)

	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return nil
	}
	prev := c.done
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.cfg, c.log = cfg, log
	c.running, c.cancel, c.done = true, cancel, done
	c.err = nil
	c.sched = newSchedule(cfg)
	c.natKnown = cfg.ForceNAT != ""
	if cfg.ForceNAT != "" {
		c.nat = cfg.ForceNAT
	}
	c.relayOK, c.relayFailures, c.relayNextCheck = false, 0, time.Time{}
	c.toClients.Store(0)
	c.fromClients.Store(0)
	c.polls.Store(0)
	c.matches.Store(0)
	c.failedConns.Store(0)
	c.mu.Unlock()

	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		err := c.run(ctx, cfg, log)
		c.mu.Lock()
		if c.done == done {
			// Not restarted meanwhile.
			c.running = false
			c.px = nil
			if err != nil && ctx.Err() == nil {
				c.err = &StateError{Kind: ErrKindConfig, Message: err.Error()}
			}
		}
		c.mu.Unlock()
		log.Info("browser proxy stopped")
		c.update()
	}()
	c.update()
	return nil
}

// Stop stops the proxy and the people it helps. It does not block.
func (c *controller) Stop() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.running = false
	c.err = nil
	c.mu.Unlock()
	c.update()
}

// Retry clears an error and tries the broker and the bridge at once.
func (c *controller) Retry() {
	c.mu.Lock()
	now := c.plat.now()
	if c.sched != nil {
		c.sched.retry(now)
	}
	c.relayFailures, c.relayNextCheck = 0, now
	if c.err != nil && c.err.Kind != ErrKindWebRTC && c.err.Kind != ErrKindConfig {
		c.err = nil
	}
	c.mu.Unlock()
	signal(c.wake)
	c.update()
}

func (c *controller) setError(e *StateError) {
	c.mu.Lock()
	c.err = e
	c.mu.Unlock()
	c.update()
}

// clearError clears an error of the given kind.
func (c *controller) clearError(kind string) {
	c.mu.Lock()
	changed := c.err != nil && c.err.Kind == kind
	if changed {
		c.err = nil
	}
	c.mu.Unlock()
	if changed {
		c.update()
	}
}

// run builds the core and runs it with a supervisor until ctx ends.
func (c *controller) run(ctx context.Context, cfg PageConfig, log *slog.Logger) error {
	pc := cfg.proxyConfig()
	pc.Logger = log
	pc.Store = c.plat.store
	pc.Observer = (*observer)(c)
	stun := cfg.STUN
	if stun == nil {
		stun = []string{proxy.DefaultSTUNURL}
	}
	pc.PeerFactory = &peerFactory{c: c, pf: c.plat.peers(stun)}
	pc.RelayDialer = &relayDialer{c: c, d: c.plat.dialer}
	broker := pc.BrokerURL
	if broker == "" {
		broker = proxy.DefaultBrokerURL
	}
	g, err := newGate(c.plat.transport, broker, c)
	if err != nil {
		return err
	}
	pc.HTTPClient = &http.Client{Transport: g}
	px, err := proxy.New(pc)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.px = px
	c.mu.Unlock()
	log.Info("browser proxy starting", "broker", broker, "type", cfg.ProxyType)

	var wg sync.WaitGroup
	wg.Go(func() { c.supervise(ctx, cfg) })
	err = px.Run(ctx)
	wg.Wait()
	return err
}

// supervise checks the bridge until it is reachable and refreshes the
// page while counters change.
func (c *controller) supervise(ctx context.Context, cfg PageConfig) {
	relay := cfg.Relay
	if relay == "" {
		relay = proxy.DefaultRelayURL
	}
	t := time.NewTicker(updateEvery)
	defer t.Stop()
	var last State
	for {
		c.mu.Lock()
		check := !c.relayOK && !c.plat.now().Before(c.relayNextCheck)
		c.mu.Unlock()
		if check {
			c.checkRelay(ctx, relay)
		}
		if s := c.State(); s != last {
			last = s
			c.update()
		}
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

// checkRelay opens and closes a WebSocket to the bridge, so that a page
// that cannot reach it says so instead of letting clients fail.
func (c *controller) checkRelay(ctx context.Context, relay string) {
	u, err := url.Parse(relay)
	if err == nil {
		dctx, cancel := context.WithTimeout(ctx, relayCheckTimeout)
		var conn net.Conn
		conn, err = c.plat.dialer.DialRelay(dctx, u, nil)
		cancel()
		if err == nil {
			conn.Close()
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		c.mu.Lock()
		c.relayOK, c.relayFailures = true, 0
		c.mu.Unlock()
		c.clearError(ErrKindRelay)
		c.logger().Info("bridge reachable")
		return
	}
	c.relayUnreachable(err)
}

// relayUnreachable records a failed connection to the bridge: polling
// waits until a check succeeds.
func (c *controller) relayUnreachable(err error) {
	c.mu.Lock()
	now := c.plat.now()
	c.relayOK = false
	c.relayFailures++
	wait := time.Duration(c.cfg.PollInterval)
	for i := 1; i < c.relayFailures && wait < maxBrokerRetry; i++ {
		wait *= 2
	}
	wait = min(wait, max(time.Duration(c.cfg.PollInterval), maxBrokerRetry))
	c.relayNextCheck = now.Add(wait)
	c.err = &StateError{Kind: ErrKindRelay, Message: "The Tor bridge cannot be reached: " + err.Error(), RetryAt: now.Add(wait).UnixMilli()}
	log := c.log
	c.mu.Unlock()
	log.Warn("bridge unreachable", "err", err, "retry_in", wait)
	c.update()
}

func (c *controller) logger() *slog.Logger {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log
}

// beforePoll implements pollHooks.
func (c *controller) beforePoll() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || c.sched == nil || !c.relayOK || c.px == nil {
		return false, ""
	}
	if !c.sched.due(c.plat.now()) {
		return false, ""
	}
	nat := c.sched.effectiveNAT(c.nat)
	if c.px.Clients() >= c.sched.limit(nat) {
		return false, ""
	}
	c.polls.Add(1)
	if c.sched.learned != "" {
		return true, c.sched.learned
	}
	return true, ""
}

// pollFailed implements pollHooks.
func (c *controller) pollFailed(err error) {
	c.mu.Lock()
	now := c.plat.now()
	wait := c.sched.pollFailed(now)
	c.err = &StateError{Kind: ErrKindBroker, Message: "The Snowflake broker cannot be reached: " + err.Error(), RetryAt: now.Add(wait).UnixMilli()}
	log := c.log
	c.mu.Unlock()
	log.Warn("broker poll failed", "err", err, "retry_in", wait)
	c.update()
}

// pollAnswered implements pollHooks.
func (c *controller) pollAnswered(resp *messages.ProxyPollResponse, err error) {
	c.mu.Lock()
	now := c.plat.now()
	c.sched.polled(now, time.Duration(resp.NextPoll)*time.Millisecond)
	var se messages.StatusError
	switch {
	case errors.As(err, &se) && resp.Status == messages.StatusIncorrectRelayPattern:
		c.err = &StateError{Kind: ErrKindPattern, Message: "The broker only offers bridges outside the allowed relay pattern " +
			fmt.Sprintf("%q", c.cfg.RelayPattern), RetryAt: c.sched.next.UnixMilli()}
	case err != nil:
		c.err = &StateError{Kind: ErrKindBroker, Message: "The broker answered: " + err.Error(), RetryAt: c.sched.next.UnixMilli()}
	default:
		if c.err != nil && (c.err.Kind == ErrKindBroker || c.err.Kind == ErrKindPattern) {
			c.err = nil
		}
		if resp.Status == messages.StatusMatch {
			c.matches.Add(1)
			c.matchNAT = resp.NAT
		}
	}
	c.mu.Unlock()
	c.update()
}

// observer receives the core's events.
type observer controller

func (o *observer) ConnectionEnded(proxy.ConnInfo) {}

func (o *observer) ConnectionTimedOut() {}

func (o *observer) NATTypeChanged(t string) {
	c := (*controller)(o)
	c.mu.Lock()
	c.nat, c.natKnown = t, true
	if c.sched != nil {
		c.sched.natMeasured()
	}
	c.mu.Unlock()
	c.update()
}

// connResult records whether a client's data channel opened.
func (c *controller) connResult(ok bool) {
	c.mu.Lock()
	if c.sched != nil {
		if ok {
			c.sched.connOK(c.sched.effectiveNAT(c.nat))
		} else {
			c.failedConns.Add(1)
			c.sched.connFailed(c.matchNAT)
		}
	}
	c.mu.Unlock()
	c.update()
}

// peerFactory wraps the browser's PeerFactory to learn which clients
// connect.
type peerFactory struct {
	c  *controller
	pf proxy.PeerFactory
}

func (f *peerFactory) NewAnswerer(ctx context.Context, offer string) (proxy.Answerer, error) {
	a, err := f.pf.NewAnswerer(ctx, offer)
	if err != nil {
		return nil, err
	}
	return &answerer{Answerer: a, c: f.c}, nil
}

func (f *peerFactory) NewOfferer(ctx context.Context, label string) (proxy.Offerer, error) {
	return f.pf.NewOfferer(ctx, label)
}

type answerer struct {
	proxy.Answerer
	c *controller
}

func (a *answerer) Accept(ctx context.Context) (net.Conn, error) {
	conn, err := a.Answerer.Accept(ctx)
	if err == nil {
		a.c.connResult(true)
	} else if !errors.Is(err, context.Canceled) {
		a.c.connResult(false)
	}
	return conn, err
}

// relayDialer wraps the browser's RelayDialer to count people and bytes.
type relayDialer struct {
	c *controller
	d proxy.RelayDialer
}

func (r *relayDialer) DialRelay(ctx context.Context, u *url.URL, check func(netip.Addr) error) (net.Conn, error) {
	conn, err := r.d.DialRelay(ctx, u, check)
	c := r.c
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.relayUnreachable(err)
		}
		return nil, err
	}
	c.mu.Lock()
	c.active++
	c.hist.helped(c.plat.now())
	c.mu.Unlock()
	c.update()
	return &countConn{Conn: conn, c: c}, nil
}

// countConn counts the bytes of one relayed connection: read from the
// bridge means sent to the client.
type countConn struct {
	net.Conn
	c        *controller
	to, from atomic.Int64
	once     sync.Once
}

func (cc *countConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	if n > 0 {
		cc.to.Add(int64(n))
		cc.c.toClients.Add(int64(n))
		cc.c.liveTotal.Add(int64(n))
	}
	return n, err
}

func (cc *countConn) Write(p []byte) (int, error) {
	n, err := cc.Conn.Write(p)
	if n > 0 {
		cc.from.Add(int64(n))
		cc.c.fromClients.Add(int64(n))
		cc.c.liveTotal.Add(int64(n))
	}
	return n, err
}

func (cc *countConn) Close() error {
	err := cc.Conn.Close()
	cc.once.Do(func() {
		c := cc.c
		n := cc.to.Load() + cc.from.Load()
		c.mu.Lock()
		c.active--
		c.liveTotal.Add(-n)
		c.hist.addBytes(n)
		c.mu.Unlock()
		c.update()
	})
	return err
}
