package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/client/natbehavior"
	"github.com/snowfall-pt/snowfall/client/rendezvous"
	"github.com/snowfall-pt/snowfall/client/socks5"
	"github.com/snowfall-pt/snowfall/client/webrtcpeer"
	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// ErrNoProxy means Dial could not reach any proxy in time.
var ErrNoProxy = errors.New("no Snowflake proxy could be reached")

// Transport dials Snowflake sessions. Create it with NewTransport; it is safe
// for concurrent use. Close it when done to stop NAT discovery.
type Transport struct {
	cfg     Config
	log     *slog.Logger
	peers   PeerSource
	nat     NATSource
	servers []webrtc.ICEServer
	cancel  context.CancelFunc

	mu   sync.Mutex
	sess *session // the shared session, nil between sessions
}

// NewTransport checks cfg and prepares a Transport. Unless cfg.NAT or
// cfg.Peers is set, it starts discovering the NAT type in the background;
// polls sent before that finishes report "unknown".
func NewTransport(cfg Config) (*Transport, error) {
	cfg = cfg.Clone()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxPeers < 1 {
		cfg.MaxPeers = 1
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.RendezvousTimeout <= 0 {
		cfg.RendezvousTimeout = DefaultRendezvousTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{cfg: cfg, log: log, cancel: cancel, peers: cfg.Peers, nat: cfg.NAT}
	if t.peers != nil {
		if t.nat == nil {
			t.nat = StaticNAT("unknown")
		}
		return t, nil
	}

	var proxy *socks5.Client
	if cfg.ProxyURL != nil {
		proxy = socks5.NewClient(cfg.ProxyURL)
	}
	t.servers = SelectICEServers(cfg.ICEServers, func(u string, err error) {
		log.Warn("ignoring ICE server", "url", u, "err", err)
	})
	for _, s := range t.servers {
		log.Info("using ICE server", "url", s.URLs[0])
	}
	var recheckNAT func(context.Context)
	if t.nat == nil {
		prober := &natbehavior.Prober{}
		if proxy != nil {
			prober.Listen = func() (net.PacketConn, error) { return proxy.ListenUDP(ctx) }
		}
		var urls []string
		for _, s := range t.servers {
			urls = append(urls, s.URLs...)
		}
		if len(urls) == 0 {
			log.Warn("no STUN server: the NAT type stays unknown")
			t.nat = StaticNAT(nattype.Unknown)
		} else {
			d := newDiscoveredNAT(func(ctx context.Context) (string, error) {
				return prober.Discover(ctx, urls)
			}, log)
			t.nat, recheckNAT = d, d.recheckAfterNoProxies
			go d.run(ctx)
		}
	}

	method := cfg.Rendezvous
	if method == nil {
		var err error
		if method, err = newRendezvous(&cfg, proxy); err != nil {
			cancel()
			return nil, err
		}
	}
	peerCfg := webrtcpeer.Config{
		ICEServers:         t.servers,
		KeepLocalAddresses: cfg.KeepLocalAddresses,
		IncludeLoopback:    cfg.IncludeLoopbackCandidates,
		OpenTimeout:        cfg.DataChannelTimeout,
		StaleTimeout:       cfg.StaleTimeout,
		Logger:             log,
	}
	if proxy != nil {
		peerCfg.Net = proxy.Net()
	}
	t.peers = &webrtcSource{
		dialer: webrtcpeer.NewDialer(peerCfg),
		broker: &broker{
			method:      method,
			fingerprint: cfg.BridgeFingerprint,
			nat:         t.nat,
			recheckNAT:  recheckNAT,
			timeout:     cfg.RendezvousTimeout,
		},
		emit: t.emit,
		log:  log,
	}
	return t, nil
}

// newRendezvous builds the rendezvous method that cfg describes.
func newRendezvous(cfg *Config, proxy *socks5.Client) (rendezvous.Method, error) {
	topts := rendezvous.TransportOptions{
		UTLSImitate:   cfg.UTLSImitate,
		UTLSRemoveSNI: cfg.UTLSRemoveSNI,
		DialContext:   cfg.DialContext,
		RootCAs:       cfg.RootCAs,
	}
	if proxy != nil && topts.DialContext == nil {
		topts.DialContext = proxy.DialContext
	}
	rt, err := rendezvous.NewTransport(topts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if cfg.AMPCacheURL != "" {
		a, err := rendezvous.NewAMP(cfg.BrokerURL, cfg.AMPCacheURL, cfg.Fronts, rt)
		if err != nil {
			return nil, err
		}
		// A broker URL the cache cannot carry (a port other than the
		// default, say) would fail every poll: refuse it now, as the
		// configuration error it is, rather than retry it.
		if _, err := a.RequestURL(nil); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		return a, nil
	}
	return rendezvous.NewHTTP(cfg.BrokerURL, cfg.Fronts, rt)
}

// NATType returns the NAT type currently reported to the broker.
func (t *Transport) NATType() string { return t.nat.NATType() }

// Close stops background work. Sessions already dialled keep running until
// their Conn is closed.
func (t *Transport) Close() error {
	t.cancel()
	return nil
}

func (t *Transport) emit(e Event) {
	if t.cfg.OnEvent != nil {
		t.cfg.OnEvent(e)
	}
}

// Dial returns a new stream to the bridge. All Dials of a Transport share
// one session (one ClientID, one stream each) while any of its streams is
// open, so a Dial opens at once when a session is up. Otherwise Dial starts
// a session and returns once the first proxy is connected, retrying the
// rendezvous until ctx is done or Config.ConnectTimeout passes; errors that
// retrying cannot fix (a bad configuration, an unknown bridge) end it
// early; others back off and retry. Closing the last stream of a session
// ends it and releases its proxies.
func (t *Transport) Dial(ctx context.Context) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s := t.acquire()
		select {
		case <-s.ready:
		case <-ctx.Done():
			t.release(s)
			return nil, ctx.Err()
		}
		if s.err != nil {
			t.release(s)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, s.err
		}
		stream, err := s.tt.Mux.OpenStream()
		if err != nil {
			t.release(s)
			// A session that died just now: start another, once.
			if attempt == 0 && s.tt.Mux.IsClosed() {
				continue
			}
			return nil, fmt.Errorf("opening smux stream: %w", err)
		}
		return &Conn{Stream: stream, t: t, s: s}, nil
	}
}

// acquire returns the Transport's session, starting one if there is none
// or it has died, and counts a reference to it.
func (t *Transport) acquire() *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess == nil || t.sess.dead() {
		t.sess = t.startSession()
	}
	t.sess.refs++
	return t.sess
}

// release drops a reference; the last one ends the session.
func (t *Transport) release(s *session) {
	t.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last && t.sess == s {
		t.sess = nil
	}
	t.mu.Unlock()
	if last {
		s.close()
	}
}

// session is one KCP/smux session to the bridge over the carriers of a
// proxy pool.
type session struct {
	id    turbotunnel.ClientID
	pool  *pool
	pconn *turbotunnel.CarrierConn
	stats *trafficStats
	log   *slog.Logger

	ready chan struct{} // closed when tt is up or err is set
	tt    *turbotunnel.Session
	err   error
	refs  int // under Transport.mu: open streams and waiting Dials

	ctx       context.Context // cancelled by close
	cancel    context.CancelFunc
	once      sync.Once
	stopStats func() // set once tt is up: logs the final counters
}

// startSession creates a session and starts collecting its proxies.
// t.mu is held.
func (t *Transport) startSession() *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		id:     turbotunnel.NewClientID(),
		stats:  &trafficStats{},
		log:    t.log,
		ready:  make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	s.pconn = turbotunnel.NewCarrierConn(s.id, bridgeAddr{}, turbotunnel.CarrierOptions{
		OnSwitch: func(reason string) {
			t.log.Info("switching to another proxy", "reason", reason)
			t.emit(Event{Kind: EventProxySwitched})
		},
	})
	s.pool = newPool(t.peers, t.cfg.MaxPeers, s.stats, t.log, func(pc *peerConn) {
		if err := s.pconn.Add(pc); err != nil {
			t.log.Debug("proxy lost before the prologue", "err", err)
			return
		}
		t.log.Info("proxy attached", "carriers", s.pconn.Carriers())
	})
	go s.start(t.cfg.ConnectTimeout)
	return s
}

// start waits for the first proxy and brings up KCP and smux.
func (s *session) start(timeout time.Duration) {
	defer close(s.ready)
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	err := s.pool.waitFirst(ctx)
	cancel()
	if err != nil {
		if last := s.pool.err(); last != nil {
			s.err = fmt.Errorf("%w: %w", ErrNoProxy, last)
		} else {
			s.err = fmt.Errorf("%w within %v", ErrNoProxy, timeout)
		}
		return
	}
	tt, err := turbotunnel.NewClientSession(s.pconn, bridgeAddr{}, turbotunnel.ClientConfig())
	if err != nil {
		s.err = err
		return
	}
	s.tt = tt
	s.stopStats = s.stats.start(s.log, s.id.String())
	s.log.Info("session started", "client_id", s.id.String())
}

// dead reports a session that failed to start or whose smux session ended.
func (s *session) dead() bool {
	select {
	case <-s.ready:
		return s.err != nil || s.tt.Mux.IsClosed()
	default:
		return false
	}
}

// close ends the session: collection, KCP and smux, and every proxy.
func (s *session) close() {
	s.once.Do(func() {
		s.cancel()
		<-s.ready
		s.pool.close()
		if s.tt != nil {
			s.tt.Close()
		}
		s.pconn.Close()
		if s.stopStats != nil {
			s.stopStats() // last, so the final counts include everything
		}
	})
}

// Conn is one stream of a session. It is a net.Conn; closing the last
// stream of a session ends the session.
type Conn struct {
	*smux.Stream
	t    *Transport
	s    *session
	once sync.Once
}

// Close closes the stream, and the session with its proxies if this was its
// last stream.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Stream.Close()
		c.t.release(c.s)
	})
	return err
}

// bridgeAddr is the address KCP believes it talks to.
type bridgeAddr struct{}

func (bridgeAddr) Network() string { return "snowflake" }
func (bridgeAddr) String() string  { return "snowflake-bridge" }

// webrtcSource is the default PeerSource: a broker rendezvous followed by a
// WebRTC data channel.
type webrtcSource struct {
	dialer *webrtcpeer.Dialer
	broker *broker
	emit   func(Event)
	log    *slog.Logger
}

// Connect implements PeerSource.
func (s *webrtcSource) Connect(ctx context.Context) (net.Conn, error) {
	rendezvousFailed := false
	conn, err := s.dialer.Dial(ctx, func(ctx context.Context, offer string) (string, error) {
		s.emit(Event{Kind: EventOfferCreated})
		answer, err := s.broker.exchange(ctx, offer)
		if err != nil {
			rendezvousFailed = true
			if ctx.Err() == nil {
				s.log.Warn("broker rendezvous failed", "err", err)
				s.emit(Event{Kind: EventRendezvousFailed, Err: err})
			}
			return "", err
		}
		s.emit(Event{Kind: EventRendezvousSucceeded})
		return answer, nil
	})
	if err != nil {
		if ctx.Err() == nil && !rendezvousFailed {
			s.log.Warn("proxy connection failed", "err", err)
			s.emit(Event{Kind: EventConnectionFailed, Err: err})
		}
		return nil, err
	}
	s.log.Info("connected to a proxy")
	s.emit(Event{Kind: EventConnected})
	return conn, nil
}

// TransportSet shares Transports, hence sessions, among connections with
// the same settings: a PT client gives every SOCKS connection whose bridge
// line says the same thing one Transport, so they all ride one session.
// Connections whose arguments differ get Transports of their own, built
// from their own copy of the configuration. Safe for concurrent use.
type TransportSet struct {
	mu sync.Mutex
	m  map[string]*Transport
}

// Get returns the Transport for cfg, creating it with NewTransport the
// first time these settings are seen.
func (s *TransportSet) Get(cfg Config) (*Transport, error) {
	key := cfg.sessionKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.m[key]; t != nil {
		return t, nil
	}
	t, err := NewTransport(cfg)
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = make(map[string]*Transport)
	}
	s.m[key] = t
	return t, nil
}

// Close closes every Transport of the set.
func (s *TransportSet) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.m {
		t.Close()
		delete(s.m, k)
	}
}

// sessionKey identifies the settings a session depends on: everything a
// bridge line can change. Hooks (Logger, OnEvent, Peers, ...) are the
// embedder's and the same for every connection, so pointers stand for them.
func (c Config) sessionKey() string {
	proxy := ""
	if c.ProxyURL != nil {
		proxy = c.ProxyURL.String()
	}
	return fmt.Sprintf("%q", []any{
		c.BrokerURL, c.Fronts, c.AMPCacheURL, c.ICEServers, c.MaxPeers,
		c.BridgeFingerprint, c.UTLSImitate, c.UTLSRemoveSNI, c.KeepLocalAddresses,
		proxy, c.ConnectTimeout, c.RendezvousTimeout, c.DataChannelTimeout, c.StaleTimeout,
		fmt.Sprintf("%p %p %p %p", c.Rendezvous, c.Peers, c.NAT, c.RootCAs),
		c.IncludeLoopbackCandidates,
	})
}
