// Command snowfall-server is the bridge side of the Snowfall pluggable
// transport, a drop-in replacement for Tor's snowflake-server. Tor runs it as
// a managed server transport (ServerTransportPlugin snowflake exec ...); it
// accepts WebSockets from Snowflake proxies and connects every client stream
// to tor's Extended ORPort, or its ORPort. See doc/bridge.md.
package main

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

	"github.com/snowfall-pt/snowfall/internal/gctune"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
	"github.com/snowfall-pt/snowfall/server"
)

const (
	ptMethodName = "snowflake"
	// implementation is what the STATUS TYPE=version line reports.
	implementation = "snowfall-server"
	// shutdownGrace is how long client streams may go on after a request
	// to stop, before everything is closed.
	shutdownGrace = 5 * time.Second
)

func main() {
	gctune.Apply()
	os.Exit(run())
}

type options struct {
	acmeHostnames string
	acmeEmail     string
	disableTLS    bool
	certFile      string
	keyFile       string
	logFile       string
	unsafeLogging bool
	showVersion   bool
	maxWebSockets int
	statsInterval time.Duration
}

func parseFlags() (options, error) {
	var o options
	flag.StringVar(&o.acmeHostnames, "acme-hostnames", "", "comma-separated hostnames for which to obtain TLS certificates by ACME (Let's Encrypt)")
	flag.StringVar(&o.acmeEmail, "acme-email", "", "optional contact email for the ACME account")
	flag.BoolVar(&o.disableTLS, "disable-tls", false, "serve plain ws:// without TLS (for a TLS-terminating front, or testing)")
	flag.StringVar(&o.certFile, "cert", "", "TLS certificate file (PEM, full chain); use with --key instead of ACME")
	flag.StringVar(&o.keyFile, "key", "", "TLS private key file (PEM); use with --cert")
	flag.StringVar(&o.logFile, "log", "", "log to this file (appended) instead of stderr")
	flag.BoolVar(&o.unsafeLogging, "unsafe-logging", false, "do not scrub IP addresses from logs")
	flag.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	flag.IntVar(&o.maxWebSockets, "max-websockets", server.DefaultMaxWebSockets, "maximum concurrent WebSocket connections; more are refused with HTTP 503")
	flag.DurationVar(&o.statsInterval, "stats-interval", server.DefaultStatsInterval, "how often to log the client_ip stats line (0 disables it)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	if o.showVersion {
		return o, nil
	}
	acme := o.acmeHostnames != ""
	files := o.certFile != "" || o.keyFile != ""
	switch {
	case o.disableTLS && (acme || files):
		return o, errors.New("--disable-tls excludes --acme-hostnames, --cert and --key")
	case acme && files:
		return o, errors.New("use either --acme-hostnames or --cert/--key, not both")
	case files && (o.certFile == "" || o.keyFile == ""):
		return o, errors.New("--cert and --key go together")
	case !o.disableTLS && !acme && !files:
		return o, errors.New("need --acme-hostnames, --cert and --key, or --disable-tls")
	}
	if o.maxWebSockets < 1 {
		return o, errors.New("--max-websockets must be at least 1")
	}
	if o.statsInterval < 0 {
		return o, errors.New("--stats-interval must not be negative")
	}
	return o, nil
}

func run() int {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "snowfall-server:", err)
		return 2
	}
	if o.showVersion {
		fmt.Println(implementation, version.String())
		return 0
	}

	logOut := io.Writer(os.Stderr)
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "snowfall-server:", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	logger := safelog.NewLogger(logOut, slog.LevelInfo, o.unsafeLogging)
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

	tlsSetup, tlsErr := setUpTLS(o, logger)
	if tlsErr != nil {
		logger.Error("TLS setup failed", "err", tlsErr)
	}

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	connCtx, stopConns := context.WithCancel(context.Background())
	defer stopConns()

	var (
		servers []*server.Server
		wg      sync.WaitGroup
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
		dialer := &server.ORDialer{Info: &ptInfo, Transport: ptMethodName, SrcAddr: opts.ORPortSrcAddr}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(serveCtx, ln); err != nil {
				logger.Error("serving stopped", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			acceptStreams(serveCtx, connCtx, srv, dialer, &wg, logger)
		}()
	}
	pt.SmethodsDone()
	if len(servers) == 0 {
		logger.Error("no listeners; exiting")
		return 1
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
func setUpTLS(o options, logger *slog.Logger) (*tlsSetup, error) {
	switch {
	case o.disableTLS:
		return nil, nil
	case o.certFile != "":
		files, err := server.LoadCertFiles(o.certFile, o.keyFile, logger)
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
		for _, h := range strings.Split(o.acmeHostnames, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		a, err := server.NewACME(hosts, o.acmeEmail, stateDir)
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
func listen(ba pt.Bindaddr, o options, t *tlsSetup, tlsErr error, info *pt.ServerInfo, logger *slog.Logger) (*server.Server, net.Listener, error) {
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
	cfg := server.Config{
		NumTurbotunnel: opts.NumTurbotunnel,
		MaxWebSockets:  o.maxWebSockets,
		StatsInterval:  o.statsInterval,
	}
	if o.statsInterval == 0 {
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

// acceptStreams connects every client stream to tor until serveCtx ends.
// Connections run under connCtx, which outlives serveCtx by the shutdown
// grace.
func acceptStreams(serveCtx, connCtx context.Context, srv *server.Server, d *server.ORDialer, wg *sync.WaitGroup, logger *slog.Logger) {
	for {
		c, err := srv.Accept(serveCtx)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			or, err := d.Dial(connCtx, c.ClientAddr)
			if err != nil {
				logger.Warn("cannot connect to tor", "err", err)
				return
			}
			if err := server.Pipe(connCtx, c, or); err != nil {
				logger.Debug("stream ended", "clientid", c.ClientID.String(), "err", err)
			}
		}()
	}
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
