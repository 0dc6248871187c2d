// Package torpt runs snowfall-server as a Tor managed server transport:
// it speaks the PT protocol with goptlib, sets up TLS (certificate files
// or ACME), starts a server.Server per bind address tor gives it, and
// connects every client stream to tor's Extended ORPort with a
// server.Forwarder.
package torpt

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
	"github.com/snowfall-pt/snowfall/server"
)

const (
	ptMethodName = "snowflake"
	// implementation is what the STATUS TYPE=version line reports.
	implementation = "snowfall-server"
	// Implementation names the program, for --version.
	Implementation = implementation
	// shutdownGrace is how long client streams may go on after a request
	// to stop, before everything is closed.
	shutdownGrace = 5 * time.Second
)

// Options are the command-line settings of snowfall-server.
type Options struct {
	ACMEHostnames string
	ACMEEmail     string
	DisableTLS    bool
	CertFile      string
	KeyFile       string
	LogFile       string
	UnsafeLogging bool
	ShowVersion   bool
	StatsInterval time.Duration
	// Limits holds the limits on what peers can make the bridge hold
	// (the Config fields set by flags; the rest is filled in per bind
	// address).
	Limits server.Config
	// MaxORDials bounds concurrent dials to tor.
	MaxORDials int
	// DebugAddr, if set, is a loopback address serving counters (see
	// serveDebug).
	DebugAddr string
	// AuthCookieFiles are further ExtORPort cookie files, for several
	// tor instances behind one ExtORPort address (doc/bridge-scaleout.md).
	AuthCookieFiles []string
}

// ParseFlags parses the command line (without the program name). Usage and
// errors go to out.
func ParseFlags(args []string, out io.Writer) (*Options, error) {
	o := &Options{}
	fs := flag.NewFlagSet(implementation, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.ACMEHostnames, "acme-hostnames", "", "comma-separated hostnames for which to obtain TLS certificates by ACME (Let's Encrypt)")
	fs.StringVar(&o.ACMEEmail, "acme-email", "", "optional contact email for the ACME account")
	fs.BoolVar(&o.DisableTLS, "disable-tls", false, "serve plain ws:// without TLS (for a TLS-terminating front, or testing)")
	fs.StringVar(&o.CertFile, "cert", "", "TLS certificate file (PEM, full chain); use with --key instead of ACME")
	fs.StringVar(&o.KeyFile, "key", "", "TLS private key file (PEM); use with --cert")
	fs.StringVar(&o.LogFile, "log", "", "log to this file (appended) instead of stderr")
	fs.BoolVar(&o.UnsafeLogging, "unsafe-logging", false, "do not scrub IP addresses from logs")
	fs.BoolVar(&o.ShowVersion, "version", false, "print the version and exit")
	fs.DurationVar(&o.StatsInterval, "stats-interval", server.DefaultStatsInterval, "how often to log the client_ip stats line (0 disables it)")
	l := &o.Limits
	fs.IntVar(&l.MaxWebSockets, "max-websockets", server.DefaultMaxWebSockets, "maximum concurrent WebSocket connections; when full, an idle or pre-prologue one is evicted, else new ones get HTTP 503")
	fs.IntVar(&l.MaxWebSocketsPerSource, "max-websockets-per-source", server.DefaultMaxWebSocketsPerSource, "maximum concurrent WebSockets from one IPv4 address or IPv6 /64 (-1: no limit, for a bridge behind a front)")
	fs.DurationVar(&l.EvictIdle, "evict-idle", server.DefaultEvictIdle, "when the WebSocket slots are full, a WebSocket that carried no packet for this long may be evicted")
	fs.DurationVar(&l.PrologueTimeout, "prologue-timeout", server.DefaultPrologueTimeout, "time a WebSocket has to send its turbotunnel prologue")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", server.DefaultIdleTimeout, "close a WebSocket that carries no packet for this long (padding does not count)")
	fs.IntVar(&l.KCPWindow, "kcp-window", server.DefaultKCPWindow, "KCP send and receive window in segments (1..65535); bounds the memory one session can pin")
	fs.IntVar(&l.MaxSessions, "max-sessions", server.DefaultMaxSessions, "maximum KCP sessions in total")
	fs.IntVar(&l.MaxSessionsPerSource, "max-sessions-per-source", server.DefaultMaxSessionsPerSource, "maximum sessions started through one IPv4 address or IPv6 /64 (-1: no limit)")
	fs.IntVar(&l.MaxStreamsPerSession, "max-streams-per-session", server.DefaultMaxStreamsPerSession, "maximum open streams (connections to tor) of one session")
	fs.DurationVar(&l.FirstFrameTimeout, "first-frame-timeout", server.DefaultFirstFrameTimeout, "close a KCP session that has delivered no smux frame after this long")
	fs.IntVar(&l.CarrierQueue, "carrier-queue", server.DefaultCarrierQueue, "packets one WebSocket may have waiting for its KCP engine; more are dropped")
	fs.IntVar(&l.EngineQueue, "engine-queue", server.DefaultEngineQueue, "packets all WebSockets together may have waiting for one KCP engine; beyond it the longest queue loses one")
	fs.IntVar(&o.MaxORDials, "max-tor-dials", server.DefaultMaxORDials, "maximum connections to tor being set up at once")
	fs.Func("auth-cookie-file", "a further ExtORPort auth cookie file, for several tor instances behind one ExtORPort address; repeatable", func(v string) error {
		o.AuthCookieFiles = append(o.AuthCookieFiles, v)
		return nil
	})
	fs.StringVar(&o.DebugAddr, "debug-addr", "", "serve counters (goroutines, WebSockets, sessions, tor connections) as JSON on this loopback address")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.ShowVersion {
		return o, nil
	}
	acme := o.ACMEHostnames != ""
	files := o.CertFile != "" || o.KeyFile != ""
	switch {
	case o.DisableTLS && (acme || files):
		return nil, errors.New("--disable-tls excludes --acme-hostnames, --cert and --key")
	case acme && files:
		return nil, errors.New("use either --acme-hostnames or --cert/--key, not both")
	case files && (o.CertFile == "" || o.KeyFile == ""):
		return nil, errors.New("--cert and --key go together")
	case !o.DisableTLS && !acme && !files:
		return nil, errors.New("need --acme-hostnames, --cert and --key, or --disable-tls")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max-websockets", l.MaxWebSockets}, {"kcp-window", l.KCPWindow}, {"max-sessions", l.MaxSessions},
		{"max-streams-per-session", l.MaxStreamsPerSession}, {"carrier-queue", l.CarrierQueue}, {"engine-queue", l.EngineQueue}, {"max-tor-dials", o.MaxORDials}} {
		if v.n < 1 {
			return nil, fmt.Errorf("--%s must be at least 1", v.name)
		}
	}
	if l.KCPWindow > 65535 {
		return nil, errors.New("--kcp-window must be at most 65535")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max-websockets-per-source", l.MaxWebSocketsPerSource}, {"max-sessions-per-source", l.MaxSessionsPerSource}} {
		if v.n == 0 || v.n < -1 {
			return nil, fmt.Errorf("--%s must be at least 1, or -1 for no limit", v.name)
		}
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"evict-idle", l.EvictIdle}, {"prologue-timeout", l.PrologueTimeout}, {"idle-timeout", l.IdleTimeout}, {"first-frame-timeout", l.FirstFrameTimeout}} {
		if v.d <= 0 {
			return nil, fmt.Errorf("--%s must be positive", v.name)
		}
	}
	if o.StatsInterval < 0 {
		return nil, errors.New("--stats-interval must not be negative")
	}
	if o.DebugAddr != "" {
		if err := checkLoopback(o.DebugAddr); err != nil {
			return nil, fmt.Errorf("--debug-addr: %w", err)
		}
	}
	return o, nil
}

// Run runs the transport under tor until a signal, or stdin closing when
// tor asked for that, and returns the exit code.
func Run(o *Options) int {

	logOut := io.Writer(os.Stderr)
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "snowfall-server:", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	logger := safelog.NewLogger(logOut, slog.LevelInfo, o.UnsafeLogging)
	logger.Info("starting", "version", version.String())

	// Caught from here on so that a signal during setup still ends in an
	// orderly exit.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)

	ptInfo, err := pt.ServerSetup(nil)
	if err != nil {
		// goptlib has told tor already.
		logger.Error("PT setup failed", "err", err)
		return 1
	}
	pt.ReportVersion(implementation, version.String())
	ptInfo.AlternateAuthCookiePaths = o.AuthCookieFiles

	tlsSetup, tlsErr := setUpTLS(o, logger)
	if tlsErr != nil {
		logger.Error("TLS setup failed", "err", tlsErr)
	}

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	connCtx, stopConns := context.WithCancel(context.Background())
	defer stopConns()

	var (
		servers    []*server.Server
		forwarders []*server.Forwarder
		wg         sync.WaitGroup
	)
	for _, ba := range ptInfo.Bindaddrs {
		srv, ln, err := listen(ba, o, tlsSetup, tlsErr, &ptInfo, logger)
		if err != nil {
			logger.Error("cannot serve", "method", ba.MethodName, "err", err)
			pt.SmethodError(ba.MethodName, err.Error())
			continue
		}
		pt.SmethodArgs(ba.MethodName, ln.Addr(), smethodArgs(tlsSetup))
		logger.Info("listening", "addr", ln.Addr().String(), "tls", tlsSetup != nil)
		servers = append(servers, srv)
		opts, _ := server.ParseOptions(ba.Options) // checked by listen
		fw := &server.Forwarder{
			Dialer:   &server.ORDialer{Info: &ptInfo, Transport: ptMethodName, SrcAddr: opts.ORPortSrcAddr},
			MaxDials: o.MaxORDials,
			Logger:   logger,
		}
		forwarders = append(forwarders, fw)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(serveCtx, ln); err != nil {
				logger.Error("serving stopped", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			fw.Serve(serveCtx, connCtx, srv)
		}()
	}
	pt.SmethodsDone()
	if len(servers) == 0 {
		logger.Error("no listeners; exiting")
		return 1
	}

	if o.DebugAddr != "" {
		dbg, err := serveDebug(o.DebugAddr, servers, forwarders)
		if err != nil {
			logger.Error("cannot serve debug counters", "err", err)
		} else {
			defer dbg.Close()
			logger.Info("debug counters", "addr", dbg.Addr().String())
		}
	}

	var acmeHTTP interface{ Close() error }
	if tlsSetup != nil && tlsSetup.acme != nil {
		acmeHTTP = startACMEResponder(tlsSetup.acme, ptInfo.Bindaddrs, logger)
	}

	// Wait for a signal, or for tor to close our stdin when it asked for
	// that to mean "exit".
	stdinClosed := make(chan struct{})
	if os.Getenv("TOR_PT_EXIT_ON_STDIN_CLOSE") == "1" {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}
	select {
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String())
	case <-stdinClosed:
		logger.Info("shutting down: stdin closed")
	}

	// Stop taking new WebSockets and streams; give open streams a short
	// grace, cut short by a second signal.
	stopServing()
	if acmeHTTP != nil {
		acmeHTTP.Close()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
	case <-sigs:
	}
	stopConns()
	for _, srv := range servers {
		srv.Close()
	}
	logger.Info("stopped")
	return 0
}

// tlsSetup is the TLS mode chosen by flags.
type tlsSetup struct {
	files     *server.CertFiles
	acme      *server.ACME
	hostnames []string
}

// tlsConfig returns nil for plain WebSockets.
func (t *tlsSetup) tlsConfig() *tls.Config {
	switch {
	case t == nil:
		return nil
	case t.files != nil:
		return t.files.TLSConfig()
	default:
		return t.acme.TLSConfig()
	}
}

// setUpTLS returns nil, nil for --disable-tls.
func setUpTLS(o *Options, logger *slog.Logger) (*tlsSetup, error) {
	switch {
	case o.DisableTLS:
		return nil, nil
	case o.CertFile != "":
		files, err := server.LoadCertFiles(o.CertFile, o.KeyFile, logger)
		if err != nil {
			return nil, err
		}
		return &tlsSetup{files: files, hostnames: files.Hostnames()}, nil
	default:
		stateDir, err := pt.MakeStateDir()
		if err != nil {
			return nil, fmt.Errorf("state directory for the ACME cache: %w", err)
		}
		var hosts []string
		for _, h := range strings.Split(o.ACMEHostnames, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		a, err := server.NewACME(hosts, o.ACMEEmail, stateDir)
		if err != nil {
			return nil, err
		}
		return &tlsSetup{acme: a, hostnames: hosts}, nil
	}
}

// smethodArgs are the ARGS of the SMETHOD line, as the reference writes
// them: tls=no, or tls=yes and one hostname= per certificate name.
func smethodArgs(t *tlsSetup) pt.Args {
	args := pt.Args{}
	if t == nil {
		args.Add("tls", "no")
		return args
	}
	args.Add("tls", "yes")
	for _, h := range t.hostnames {
		args.Add("hostname", h)
	}
	return args
}

// listen checks one bind address's settings, starts a Server for it and
// opens its listener.
func listen(ba pt.Bindaddr, o *Options, t *tlsSetup, tlsErr error, info *pt.ServerInfo, logger *slog.Logger) (*server.Server, net.Listener, error) {
	if ba.MethodName != ptMethodName {
		return nil, nil, errors.New("no such method")
	}
	if ba.Addr.Port == 0 {
		return nil, nil, errors.New("cannot listen on port 0; set a port with ServerTransportListenAddr")
	}
	if tlsErr != nil {
		return nil, nil, fmt.Errorf("TLS: %w", tlsErr)
	}
	opts, err := server.ParseOptions(ba.Options)
	if err != nil {
		return nil, nil, err
	}
	if err := server.CheckSrcAddrFamily(opts.ORPortSrcAddr, info); err != nil {
		return nil, nil, err
	}
	cfg := o.Limits
	cfg.NumTurbotunnel = opts.NumTurbotunnel
	cfg.StatsInterval = o.StatsInterval
	if o.StatsInterval == 0 {
		cfg.StatsInterval = -1
	}
	cfg.TLSConfig = t.tlsConfig()
	srv, err := server.NewServer(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.ListenTCP("tcp", ba.Addr)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, ln, nil
}

// startACMEResponder answers HTTP-01 challenges on port 80 of the first
// bind address. Failing to bind is not fatal: certificates may be cached,
// or TLS-ALPN-01 may succeed on the WebSocket port.
func startACMEResponder(a *server.ACME, bindaddrs []pt.Bindaddr, logger *slog.Logger) interface{ Close() error } {
	var ip net.IP
	for _, ba := range bindaddrs {
		if ba.MethodName == ptMethodName {
			ip = ba.Addr.IP
			break
		}
	}
	srv := a.HTTPServer(server.ACMEChallengeAddr(ip))
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		logger.Warn("cannot listen for ACME HTTP-01 challenges", "addr", srv.Addr, "err", err)
		return nil
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("ACME HTTP-01 responder stopped", "err", err)
		}
	}()
	return srv
}
