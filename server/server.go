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
	"sync/atomic"
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

	instances []*kcpInstance
	clientIDs *clientIDMap
	conns     chan *Conn

	ctx    context.Context // done when the Server is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	sessMu   sync.Mutex
	sessions map[*smux.Session]struct{}

	webSockets atomic.Int64 // currently open (or being upgraded)
	stats      stats

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
		cfg:       cfg,
		logger:    logger,
		clientIDs: newClientIDMap(cfg.ClientIDMapSize),
		conns:     make(chan *Conn, acceptBacklog),
		ctx:       ctx,
		cancel:    cancel,
		sessions:  make(map[*smux.Session]struct{}),
	}
	for i := range cfg.NumTurbotunnel {
		inst, err := newKCPInstance(i, cfg.ClientQueueTimeout)
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
		for sess := range s.sessions {
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
func (s *Server) ActiveWebSockets() int { return int(s.webSockets.Load()) }

// KnownClients returns the number of ClientIDs with a recorded address.
func (s *Server) KnownClients() int { return s.clientIDs.Len() }
