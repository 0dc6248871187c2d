package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxWebSockets bounds concurrent WebSockets. Each costs a few
	// tens of KiB, so the default stays well under a GiB.
	DefaultMaxWebSockets = 10000
	// DefaultIdleTimeout closes a WebSocket that sends nothing, prologue
	// included, for this long. Live clients send at least a smux
	// keep-alive every 10 s.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultWriteTimeout closes a WebSocket whose peer has not accepted
	// a write for this long, so a peer that never reads pins no memory.
	DefaultWriteTimeout = 15 * time.Second
	// DefaultClientQueueTimeout is how long a ClientID's packet queue
	// outlives its last use (PROTOCOL.md §6.6).
	DefaultClientQueueTimeout = time.Minute
	// DefaultPrologueTimeout is how long a WebSocket may take to send
	// its prologue. Clients send it as soon as their data channel opens.
	DefaultPrologueTimeout = 15 * time.Second
	// DefaultMaxWebSocketsPerSource bounds the WebSockets from one IPv4
	// address or IPv6 /64. Proxies carry many clients each, so it is
	// generous; what stops one source from holding slots is eviction.
	DefaultMaxWebSocketsPerSource = 1000
	// DefaultEvictIdle is how long a WebSocket must have carried no
	// packet before a new connection may evict it when the slots are
	// full. Live clients send a keep-alive every 10 s.
	DefaultEvictIdle = 30 * time.Second
	// DefaultKCPWindow is the KCP send and receive window, in segments.
	// It bounds what one session can make the bridge hold: up to a
	// window of out-of-order segments (each held at its own size by the
	// patched kcp-go) and a window of unacknowledged ones (1.4 KiB
	// each). 1024 segments in flight still carry 2.8 MB/s at a 500 ms
	// round trip, more than a Snowflake path does.
	DefaultKCPWindow = 1024
	// DefaultMaxSessions bounds the KCP sessions, running or about to
	// start, in total.
	DefaultMaxSessions = 20000
	// DefaultMaxSessionsPerSource bounds the new sessions charged to one
	// source (the WebSocket that brought a ClientID first).
	DefaultMaxSessionsPerSource = 256
	// DefaultMaxStreamsPerSession bounds the open smux streams of one
	// session, each of which is a connection to tor. Enough for a client
	// that shares one session among all its SOCKS connections.
	DefaultMaxStreamsPerSession = 64
	// DefaultFirstFrameTimeout closes a KCP session that has delivered
	// no smux frame this long after it began.
	DefaultFirstFrameTimeout = 30 * time.Second
	// DefaultCarrierQueue is how many packets one WebSocket may have
	// waiting for its KCP engine; beyond that its packets are dropped
	// (KCP retransmits) rather than crowding out other WebSockets. It
	// absorbs a fast client's bursts while the engine is busy.
	DefaultCarrierQueue = 256
	// DefaultEngineQueue bounds the packets waiting for one KCP engine
	// from all its WebSockets together (about 5.6 MiB at most); when it
	// is reached the longest queue loses a packet.
	DefaultEngineQueue = 4096

	// DefaultStatsInterval is how often the client_ip stats line is logged.
	DefaultStatsInterval = 24 * time.Hour

	// httpTimeout bounds reading a request's headers and body (and the TLS
	// handshake), as the reference's ReadTimeout does.
	httpTimeout = 10 * time.Second
	// maxHeaderBytes bounds the request headers of the upgrade request.
	maxHeaderBytes = 16 << 10
	// acceptBacklog is how many accepted streams may wait for Accept.
	acceptBacklog = 64
)

// ErrClosed is returned by Accept and Serve once the Server is closed.
var ErrClosed = errors.New("server: closed")

// Config configures a Server. The zero value is usable.
type Config struct {
	// NumTurbotunnel is the number of KCP engines; 0 means 1.
	NumTurbotunnel int
	// TLSConfig, if not nil, makes Serve speak TLS (wss://).
	TLSConfig *tls.Config
	// MaxWebSockets bounds concurrent WebSockets; upgrade requests beyond
	// it get 503. 0 means DefaultMaxWebSockets.
	MaxWebSockets int
	// IdleTimeout: see DefaultIdleTimeout. 0 means the default.
	IdleTimeout time.Duration
	// WriteTimeout: see DefaultWriteTimeout. 0 means the default.
	WriteTimeout time.Duration
	// ClientQueueTimeout: see DefaultClientQueueTimeout. 0 means the default.
	ClientQueueTimeout time.Duration
	// StatsInterval: see DefaultStatsInterval. 0 means the default; a
	// negative value disables the stats line.
	StatsInterval time.Duration
	// ClientIDMapSize is the number of ClientID→address records kept. 0
	// means DefaultClientIDMapSize.
	ClientIDMapSize int

	// Limits on what unauthenticated peers can make the bridge hold; 0
	// means the Default of the same name. For the per-source limits a
	// negative value means no limit (for a bridge behind a front that
	// hides the peers' addresses).

	// PrologueTimeout: see DefaultPrologueTimeout.
	PrologueTimeout time.Duration
	// MaxWebSocketsPerSource: see DefaultMaxWebSocketsPerSource.
	MaxWebSocketsPerSource int
	// EvictIdle: see DefaultEvictIdle.
	EvictIdle time.Duration
	// KCPWindow: see DefaultKCPWindow.
	KCPWindow int
	// MaxSessions: see DefaultMaxSessions.
	MaxSessions int
	// MaxSessionsPerSource: see DefaultMaxSessionsPerSource.
	MaxSessionsPerSource int
	// MaxStreamsPerSession: see DefaultMaxStreamsPerSession.
	MaxStreamsPerSession int
	// FirstFrameTimeout: see DefaultFirstFrameTimeout.
	FirstFrameTimeout time.Duration
	// CarrierQueue: see DefaultCarrierQueue.
	CarrierQueue int
	// EngineQueue: see DefaultEngineQueue.
	EngineQueue int
}

// setDefault replaces a zero *v by def.
func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

func (c *Config) setDefaults() error {
	if c.NumTurbotunnel == 0 {
		c.NumTurbotunnel = 1
	}
	if c.NumTurbotunnel < 1 || c.NumTurbotunnel > MaxNumTurbotunnel {
		return fmt.Errorf("server: NumTurbotunnel %d out of range 1..%d", c.NumTurbotunnel, MaxNumTurbotunnel)
	}
	if c.MaxWebSockets == 0 {
		c.MaxWebSockets = DefaultMaxWebSockets
	}
	if c.MaxWebSockets < 0 {
		return fmt.Errorf("server: negative MaxWebSockets %d", c.MaxWebSockets)
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ClientQueueTimeout <= 0 {
		c.ClientQueueTimeout = DefaultClientQueueTimeout
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.ClientIDMapSize <= 0 {
		c.ClientIDMapSize = DefaultClientIDMapSize
	}
	setDefault(&c.PrologueTimeout, DefaultPrologueTimeout)
	setDefault(&c.EvictIdle, DefaultEvictIdle)
	setDefault(&c.FirstFrameTimeout, DefaultFirstFrameTimeout)
	setDefault(&c.MaxWebSocketsPerSource, DefaultMaxWebSocketsPerSource)
	setDefault(&c.MaxSessionsPerSource, DefaultMaxSessionsPerSource)
	setDefault(&c.KCPWindow, DefaultKCPWindow)
	setDefault(&c.MaxSessions, DefaultMaxSessions)
	setDefault(&c.MaxStreamsPerSession, DefaultMaxStreamsPerSession)
	setDefault(&c.CarrierQueue, DefaultCarrierQueue)
	setDefault(&c.EngineQueue, DefaultEngineQueue)
	for _, v := range []struct {
		name string
		n    int
	}{{"KCPWindow", c.KCPWindow}, {"MaxSessions", c.MaxSessions}, {"MaxStreamsPerSession", c.MaxStreamsPerSession}, {"CarrierQueue", c.CarrierQueue}, {"EngineQueue", c.EngineQueue}} {
		if v.n < 1 {
			return fmt.Errorf("server: %s %d must be at least 1", v.name, v.n)
		}
	}
	if c.PrologueTimeout < 0 || c.EvictIdle < 0 || c.FirstFrameTimeout < 0 {
		return errors.New("server: negative timeout")
	}
	if c.KCPWindow > 65535 {
		return fmt.Errorf("server: KCPWindow %d above 65535", c.KCPWindow)
	}
	if err := c.sessionConfig().Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// Conn is one smux stream a client opened: what becomes one connection to
// tor. CloseWrite half-closes it (sends FIN).
type Conn struct {
	*smux.Stream
	// ClientID is the client's turbotunnel session.
	ClientID turbotunnel.ClientID
	// ClientAddr is the client's address as "IP:1" (the form USERADDR
	// needs), from the newest WebSocket of this ClientID when the KCP
	// session began; "" if no proxy reported it.
	ClientAddr string
}

// Server is the bridge side of the turbotunnel: a WebSocket handler feeding
// KCP engines whose smux streams are handed out by Accept.
type Server struct {
	cfg    Config
	logger *slog.Logger

	session   turbotunnel.Config
	instances []*kcpInstance
	clientIDs *clientIDMap
	conns     chan *Conn

	ctx    context.Context // done when the Server is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	sessMu       sync.Mutex
	smuxSessions map[*turbotunnel.Session]struct{}

	slots    *carrierSlots
	sessions *sessionTable
	limits   *limitLogger
	stats    stats

	closeOnce sync.Once
}

// NewServer starts the KCP engines and the stats logger. logger should
// scrub addresses (safelog.NewLogger) unless unsafe logging was asked for.
// Call Serve to accept WebSockets and Accept to take client streams; Close
// releases everything.
func NewServer(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          cfg,
		logger:       logger,
		clientIDs:    newClientIDMap(cfg.ClientIDMapSize),
		conns:        make(chan *Conn, acceptBacklog),
		ctx:          ctx,
		cancel:       cancel,
		smuxSessions: make(map[*turbotunnel.Session]struct{}),
		session:      cfg.sessionConfig(),
		slots:        newCarrierSlots(cfg.MaxWebSockets, cfg.MaxWebSocketsPerSource, cfg.EvictIdle),
		sessions:     newSessionTable(cfg.MaxSessions, cfg.MaxSessionsPerSource),
		limits:       newLimitLogger(logger),
	}
	for i := range cfg.NumTurbotunnel {
		inst, err := newKCPInstance(i, cfg.ClientQueueTimeout, cfg.CarrierQueue, cfg.EngineQueue)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.instances = append(s.instances, inst)
		s.wg.Add(1)
		go s.acceptSessions(inst)
	}
	if cfg.StatsInterval > 0 {
		s.wg.Add(1)
		go s.logStats(cfg.StatsInterval)
	}
	return s, nil
}

// Serve accepts HTTP connections on ln and upgrades requests on every path
// to WebSockets (over TLS if Config.TLSConfig is set). It returns nil when
// ctx ends or the Server is closed; WebSockets already open stay open until
// the Server is closed. Serve may be called for several listeners.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = newLimitListener(ln, 2*s.cfg.MaxWebSockets+16)
	if s.cfg.TLSConfig != nil {
		ln = tls.NewListener(ln, s.cfg.TLSConfig)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: httpTimeout,
		ReadTimeout:       httpTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http's own messages (TLS handshake errors and the like)
		// are noise for an operator: keep them at debug, scrubbed.
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if s.ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("server: serving HTTP: %w", err)
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	srv.Close()
	<-done
	return nil
}

// Accept returns the next stream a client opened.
func (s *Server) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, ErrClosed
	}
}

// Close closes every WebSocket, KCP engine and smux session and stops
// Serve. Streams already returned by Accept are closed with their session.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		for _, inst := range s.instances {
			inst.close()
		}
		s.sessMu.Lock()
		for sess := range s.smuxSessions {
			sess.Close()
		}
		s.sessMu.Unlock()
		s.wg.Wait()
		// Close streams nobody accepted. The session goroutines have
		// ended, so nothing is added meanwhile.
		for len(s.conns) > 0 {
			(<-s.conns).Close()
		}
	})
	return nil
}

// ActiveWebSockets returns the number of WebSockets open or being upgraded.
func (s *Server) ActiveWebSockets() int { return s.slots.len() }

// Sessions returns the number of admitted ClientIDs (KCP sessions running
// or about to start) and of running KCP sessions.
func (s *Server) Sessions() (admitted, running int) { return s.sessions.counts() }

// KnownClients returns the number of ClientIDs with a recorded address.
func (s *Server) KnownClients() int { return s.clientIDs.Len() }
