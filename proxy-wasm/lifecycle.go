package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/proxy"
)

// This file is the proxy's lifecycle: switching it on and off, retrying,
// and the bridge check that gates polling.

// relayCheckTimeout bounds the check that the bridge is reachable.
const relayCheckTimeout = 10 * time.Second

// updateEvery is how often the page is told about changing counters.
const updateEvery = time.Second

// platform is what the controller gets from the browser (or from a test).
type platform struct {
	// peers makes the WebRTC peer factory for the given STUN servers.
	peers  func(stun []string) proxy.PeerFactory
	dialer proxy.RelayDialer
	poster proxy.Poster
	store  proxy.Store
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
	active   int // people being relayed now

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
	px := c.px
	c.mu.Unlock()
	signal(c.wake)
	if px != nil {
		px.PollNow()
	}
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
	// The core's events and policy questions come straight here
	// (counting.go, pollpolicy.go); nothing of the core is wrapped.
	pc.Observer = (*observer)(c)
	pc.PollPolicy = (*pollPolicy)(c)
	stun := cfg.STUN
	if stun == nil {
		stun = []string{proxy.DefaultSTUNURL}
	}
	pc.PeerFactory = c.plat.peers(stun)
	pc.RelayDialer = c.plat.dialer
	pc.Poster = c.plat.poster
	broker := pc.BrokerURL
	if broker == "" {
		broker = proxy.DefaultBrokerURL
	}
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
		px := c.px
		c.mu.Unlock()
		c.clearError(ErrKindRelay)
		c.logger().Info("bridge reachable")
		if px != nil {
			px.PollNow() // polls waited for the bridge
		}
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
