package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/client/natbehavior"
	"github.com/snowfall-pt/snowfall/client/rendezvous"
	"github.com/snowfall-pt/snowfall/client/socks5"
	"github.com/snowfall-pt/snowfall/client/webrtcpeer"
	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// Session parameters (PROTOCOL.md §6.3, §6.4).
const (
	kcpWindow        = 65535
	kcpMTU           = turbotunnel.MaxPacketSize
	smuxVersion      = 2
	smuxKeepAlive    = 10 * time.Minute
	smuxStreamBuffer = 1 << 20
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

// Dial starts a new session and returns its stream once the first proxy is
// connected. It retries the rendezvous until ctx is done or
// Config.ConnectTimeout passes; errors that retrying cannot fix (a bad
// configuration, an unknown bridge) end it early; others back off and retry.
// Closing the returned conn ends the session and releases its proxies.
func (t *Transport) Dial(ctx context.Context) (net.Conn, error) {
	stats := &trafficStats{}
	p := newPool(t.peers, t.cfg.MaxPeers, stats, t.log)
	waitCtx, cancel := context.WithTimeout(ctx, t.cfg.ConnectTimeout)
	first, err := p.take(waitCtx)
	cancel()
	if err != nil {
		last := p.err()
		p.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if last != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoProxy, last)
		}
		return nil, fmt.Errorf("%w within %v", ErrNoProxy, t.cfg.ConnectTimeout)
	}
	conn, err := t.newSession(p, first, stats)
	if err != nil {
		first.Close()
		p.close()
		return nil, err
	}
	return conn, nil
}

// newSession builds KCP and smux over a RedialPacketConn that draws carriers
// from p, starting with first.
func (t *Transport) newSession(p *pool, first *peerConn, stats *trafficStats) (*Conn, error) {
	id := turbotunnel.NewClientID()
	var pending atomic.Pointer[peerConn]
	pending.Store(first)
	var used atomic.Int32
	// dial hands RedialPacketConn the next live proxy. A proxy that dies
	// before its prologue is written is skipped: an error here would end
	// the session.
	dial := func(ctx context.Context) (net.Conn, error) {
		for {
			pc := pending.Swap(nil)
			if pc == nil {
				var err error
				if pc, err = p.take(ctx); err != nil {
					return nil, err
				}
			}
			if used.Add(1) > 1 {
				t.log.Info("switching to another proxy")
				t.emit(Event{Kind: EventProxySwitched})
			}
			// The prologue goes in two writes, hence two messages, as the
			// reference client sends it.
			if _, err := pc.Write(turbotunnel.Token[:]); err != nil {
				pc.Close()
				continue
			}
			if _, err := pc.Write(id[:]); err != nil {
				pc.Close()
				continue
			}
			return pc, nil
		}
	}
	pconn := turbotunnel.NewRedialPacketConn(id, bridgeAddr{}, dial)
	kconn, err := kcp.NewConn2(bridgeAddr{}, nil, 0, 0, pconn)
	if err != nil {
		pconn.Close()
		return nil, fmt.Errorf("starting KCP: %w", err)
	}
	kconn.SetStreamMode(true)
	kconn.SetWindowSize(kcpWindow, kcpWindow)
	kconn.SetNoDelay(0, 0, 0, 1)
	kconn.SetMtu(kcpMTU)

	scfg := smux.DefaultConfig()
	scfg.Version = smuxVersion
	scfg.KeepAliveTimeout = smuxKeepAlive
	scfg.MaxStreamBuffer = smuxStreamBuffer
	if err := smux.VerifyConfig(scfg); err != nil {
		kconn.Close()
		pconn.Close()
		return nil, err
	}
	sess, err := smux.Client(kconn, scfg)
	if err != nil {
		kconn.Close()
		pconn.Close()
		return nil, fmt.Errorf("starting smux: %w", err)
	}
	stream, err := sess.OpenStream()
	if err != nil {
		sess.Close()
		kconn.Close()
		pconn.Close()
		return nil, fmt.Errorf("opening smux stream: %w", err)
	}
	stop := stats.start(t.log, id.String())
	t.log.Info("session started", "client_id", id.String())
	return &Conn{Stream: stream, sess: sess, kcp: kconn, pconn: pconn, pool: p, stop: stop}, nil
}

// Conn is a session's stream. It is a net.Conn; Close ends the whole
// session.
type Conn struct {
	*smux.Stream
	sess  *smux.Session
	kcp   *kcp.UDPSession
	pconn net.PacketConn
	pool  *pool
	stop  func() // logs the final counters; called last
	once  sync.Once
}

// Close closes the stream, the session and every proxy it holds.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Stream.Close()
		c.sess.Close()
		c.kcp.Close()
		c.pconn.Close()
		c.pool.close()
		c.stop()
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
