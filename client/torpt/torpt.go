package torpt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/snowfall-pt/snowfall/client"
	"github.com/snowfall-pt/snowfall/client/socks5"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
)

// MethodName is the only transport this program provides.
const MethodName = "snowflake"

// Implementation is the name reported in the STATUS TYPE=version line.
const Implementation = "snowfall-client"

// proxyCheckTimeout bounds the test of TOR_PT_PROXY at start-up.
const proxyCheckTimeout = 15 * time.Second

// Run is the whole managed-transport life: set-up with tor, serving SOCKS
// connections until ctx is done (the caller cancels it on SIGTERM or when
// stdin closes), then shutting down. It returns an error when set-up fails.
func Run(ctx context.Context, o *Options) error {
	logw, closeLog, err := openLog(o)
	if err != nil {
		return err
	}
	defer closeLog()
	log := safelog.NewLogger(logw, slog.LevelInfo, o.UnsafeLogging)
	log.Info("snowfall-client starting", "version", version.String())

	info, err := pt.ClientSetup(nil)
	if err != nil {
		return fmt.Errorf("PT client set-up: %w", err)
	}
	pt.ReportVersion(Implementation, version.String())

	base := o.Base.Clone()
	base.Logger = log
	if info.ProxyURL != nil {
		if err := checkProxy(ctx, info.ProxyURL.Scheme, func(ctx context.Context) error {
			pc, err := socks5.NewClient(info.ProxyURL).ListenUDP(ctx)
			if err == nil {
				pc.Close()
			}
			return err
		}); err != nil {
			pt.ProxyError(err.Error())
			return err
		}
		base.ProxyURL = info.ProxyURL
		pt.ProxyDone()
	}

	s := &server{base: base, log: log, unsafe: o.UnsafeLogging}
	var listeners []net.Listener
	for _, name := range info.MethodNames {
		if name != MethodName {
			pt.CmethodError(name, "no such method")
			continue
		}
		ln, err := pt.ListenSocks("tcp", "127.0.0.1:0")
		if err != nil {
			pt.CmethodError(name, err.Error())
			continue
		}
		listeners = append(listeners, ln)
		s.wg.Add(1)
		go s.acceptLoop(ctx, ln)
		pt.Cmethod(name, ln.Version(), ln.Addr())
		log.Info("listening", "method", name, "addr", ln.Addr().String())
	}
	pt.CmethodsDone()

	<-ctx.Done()
	log.Info("shutting down")
	for _, ln := range listeners {
		ln.Close()
	}
	// Handlers watch ctx and close their connections; give them a moment.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.transports.Close()
	return nil
}

// checkProxy accepts socks5 proxies that can set up a UDP association
// (WebRTC needs UDP) and refuses every other scheme.
func checkProxy(ctx context.Context, scheme string, tryUDP func(context.Context) error) error {
	if scheme != "socks5" {
		return fmt.Errorf("proxy scheme %q is not supported (only socks5)", scheme)
	}
	ctx, cancel := context.WithTimeout(ctx, proxyCheckTimeout)
	defer cancel()
	if err := tryUDP(ctx); err != nil {
		return fmt.Errorf("proxy cannot relay UDP: %v", safelog.Scrub(err.Error()))
	}
	return nil
}

// openLog opens the log destination chosen by o.
func openLog(o *Options) (io.Writer, func(), error) {
	if o.LogFile == "" {
		return io.Discard, func() {}, nil
	}
	path := o.LogFile
	if o.LogToStateDir {
		dir, err := pt.MakeStateDir()
		if err != nil {
			return nil, nil, fmt.Errorf("-log-to-state-dir: %w", err)
		}
		path = filepath.Join(dir, o.LogFile)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// server handles SOCKS connections from tor.
type server struct {
	base       client.Config
	log        *slog.Logger
	unsafe     bool
	wg         sync.WaitGroup
	transports client.TransportSet
}

func (s *server) acceptLoop(ctx context.Context, ln *pt.SocksListener) {
	defer s.wg.Done()
	for {
		conn, err := ln.AcceptSocks()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if ctx.Err() == nil {
				s.log.Error("SOCKS accept failed", "err", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn)
		}()
	}
}

// scrub removes addresses from messages for tor unless unsafe logging is on.
func (s *server) scrub(msg string) string {
	if s.unsafe {
		return msg
	}
	return safelog.Scrub(msg)
}

// handle serves one SOCKS connection: its own configuration, and the
// session of every connection with the same configuration.
func (s *server) handle(ctx context.Context, conn *pt.SocksConn) {
	defer conn.Close()
	cfg, err := s.base.WithArgs(conn.Req.Args)
	if err != nil {
		msg := s.scrub("snowflake: bad bridge line arguments: " + err.Error())
		s.log.Warn(msg)
		pt.Log(pt.LogSeverityWarning, msg)
		conn.Reject()
		return
	}
	cfg.OnEvent = func(e client.Event) {
		pt.Log(pt.LogSeverityNotice, s.scrub(e.String()))
	}
	// Connections with the same bridge line share one Transport, hence
	// one session; different arguments get a Transport of their own.
	t, err := s.transports.Get(cfg)
	if err != nil {
		msg := s.scrub("snowflake: configuration error: " + err.Error())
		s.log.Warn(msg)
		pt.Log(pt.LogSeverityWarning, msg)
		conn.Reject()
		return
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Tor gives up on a connection by closing it; stop dialling then.
	early := watchEarly(conn, cancel)
	sconn, err := t.Dial(sctx)
	early.stop(conn)
	if err != nil {
		if sctx.Err() != nil {
			s.log.Info("SOCKS connection closed while connecting")
			conn.Reject()
			return
		}
		msg := s.scrub("snowflake: connection failed: " + err.Error())
		s.log.Warn(msg)
		pt.Log(pt.LogSeverityWarning, msg)
		reason := byte(pt.SocksRepGeneralFailure)
		if errors.Is(err, client.ErrNoProxy) {
			reason = pt.SocksRepHostUnreachable
		}
		conn.RejectReason(reason)
		return
	}
	defer sconn.Close()
	if err := conn.Grant(&net.TCPAddr{IP: net.IPv4zero, Port: 0}); err != nil {
		s.log.Warn("SOCKS grant failed", "err", err)
		return
	}
	s.log.Info("SOCKS connection granted")
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		sconn.Close()
	})
	defer stop()
	copyBoth(&prefixConn{Conn: conn, prefix: early.b}, sconn)
	s.log.Info("SOCKS connection closed")
}

// earlyRead watches a SOCKS connection while its session is being set up:
// tor sends nothing before the reply, so a read returns only when tor gives
// up and closes it. A byte that does arrive is kept for the session.
type earlyRead struct {
	done chan struct{}
	b    []byte
}

func watchEarly(conn net.Conn, cancel context.CancelFunc) *earlyRead {
	r := &earlyRead{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var buf [1]byte
		n, err := conn.Read(buf[:])
		r.b = buf[:n]
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			cancel()
		}
	}()
	return r
}

// stop ends the watch and restores the connection for normal use.
func (r *earlyRead) stop(conn net.Conn) {
	conn.SetReadDeadline(time.Now())
	<-r.done
	conn.SetReadDeadline(time.Time{})
}

// prefixConn returns prefix before the rest of Conn's data.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// copyBoth copies both ways until either direction ends, then closes both.
func copyBoth(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}
