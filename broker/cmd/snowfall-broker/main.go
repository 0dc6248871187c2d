// Command snowfall-broker runs the Snowflake rendezvous broker. Its flags
// keep the names and meanings of Tor's snowflake-broker; see doc/broker.md.
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
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/broker"
	"github.com/snowfall-pt/snowfall/broker/bridgelist"
	"github.com/snowfall-pt/snowfall/broker/ipcount"
	"github.com/snowfall-pt/snowfall/broker/ratelimit"
	"github.com/snowfall-pt/snowfall/internal/acmecert"
	"github.com/snowfall-pt/snowfall/internal/geoip"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
)

type options struct {
	addr                                string
	acmeHostnames, acmeEmail, acmeCache string
	certFile, keyFile                   string
	disableTLS                          bool
	geoipDB, geoip6DB                   string
	disableGeoip                        bool
	bridgeListPath                      string
	allowedRelayPattern                 string
	defaultRelayPattern                 string
	metricsLog                          string
	metricsInterval                     time.Duration
	ipCountLog, ipCountMask             string
	ipCountInterval                     time.Duration
	unsafeLogging                       bool
	trustForwarded                      bool
	pollUnrestricted, pollRestricted    time.Duration
	pollIntervalFile                    string
	proxyTimeout, clientTimeout         time.Duration
	maxWaiting                          int
	maxSidBytes, maxSDPBytes            int
	clientRate, proxyRate               float64
	clientBurst, proxyBurst             int
	rateSources, rateIPv6Prefix         int
	forwardedHeader                     string
	trustedHops                         int
	trustedProxies                      string
	debugAddr                           string
	showVersion                         bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("snowfall-broker", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", ":443", "address to listen on")
	fs.StringVar(&o.acmeHostnames, "acme-hostnames", "", "comma-separated hostnames for a Let's Encrypt certificate (HTTP-01 responder on :80)")
	fs.StringVar(&o.acmeEmail, "acme-email", "", "optional contact email for Let's Encrypt notifications")
	fs.StringVar(&o.acmeCache, "acme-cert-cache", "acme-cert-cache", "directory in which ACME certificates are cached")
	fs.StringVar(&o.certFile, "cert", "", "TLS certificate file (with -key)")
	fs.StringVar(&o.keyFile, "key", "", "TLS private key file (with -cert)")
	fs.BoolVar(&o.disableTLS, "disable-tls", false, "serve plain HTTP")
	fs.StringVar(&o.geoipDB, "geoipdb", "/usr/share/tor/geoip", "tor-format IPv4 geoip file")
	fs.StringVar(&o.geoip6DB, "geoip6db", "/usr/share/tor/geoip6", "tor-format IPv6 geoip file")
	fs.BoolVar(&o.disableGeoip, "disable-geoip", false, "don't use geoip for stats collection")
	fs.StringVar(&o.bridgeListPath, "bridge-list-path", "", "JSON Lines bridge list (replaces the built-in default bridge)")
	fs.StringVar(&o.allowedRelayPattern, "allowed-relay-pattern", "", "relay hostname pattern; proxies whose AcceptedRelayPattern is more restrictive are rejected, and every bridge relay must match it")
	fs.StringVar(&o.defaultRelayPattern, "default-relay-pattern", "", "pattern presumed for legacy proxies that send no AcceptedRelayPattern; empty rejects them")
	fs.StringVar(&o.metricsLog, "metrics-log", "", "file to append the metrics report to, also served at /metrics (default stdout, /metrics 404)")
	fs.DurationVar(&o.metricsInterval, "metrics-interval", broker.DefaultMetricsInterval, "metrics report period")
	fs.StringVar(&o.ipCountLog, "ip-count-log", "", "file to append a distinct proxy address count to every -ip-count-interval")
	fs.StringVar(&o.ipCountMask, "ip-count-mask", "", "accepted for compatibility and unused: the journal holds only counts")
	fs.DurationVar(&o.ipCountInterval, "ip-count-interval", time.Hour, "distinct address count period")
	fs.BoolVar(&o.unsafeLogging, "unsafe-logging", false, "don't scrub IP addresses from logs")
	fs.BoolVar(&o.trustForwarded, "trust-forwarded", false, "take the remote address from -forwarded-header, as added by -trusted-hops or -trusted-proxies (only behind a trusted reverse proxy or CDN)")
	fs.StringVar(&o.forwardedHeader, "forwarded-header", broker.HeaderXForwardedFor, "with -trust-forwarded: the header the fronts append to, X-Forwarded-For or Forwarded")
	fs.IntVar(&o.trustedHops, "trusted-hops", 1, "with -trust-forwarded: the number of trusted fronts in a row, each appending one entry; the client is the entry that many from the right")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", "", "with -trust-forwarded: comma-separated networks of the trusted fronts (CIDR); the header is believed only from them and their entries are skipped from the right (overrides -trusted-hops)")
	fs.IntVar(&o.maxSidBytes, "max-sid-bytes", broker.DefaultMaxSidBytes, "longest proxy session id accepted")
	fs.IntVar(&o.maxSDPBytes, "max-sdp-bytes", broker.DefaultMaxSDPBytes, "longest offer or answer (its JSON text) accepted")
	fs.Float64Var(&o.clientRate, "client-rate", broker.DefaultClientRate, "client polls per second per source address (IPv6: per -rate-limit-ipv6-prefix); more get 429 (0: no limit)")
	fs.IntVar(&o.clientBurst, "client-burst", broker.DefaultClientBurst, "client polls a source may make at once")
	fs.Float64Var(&o.proxyRate, "proxy-rate", broker.DefaultProxyRate, "proxy polls and answers per second per source address; more get 429 (0: no limit)")
	fs.IntVar(&o.proxyBurst, "proxy-burst", broker.DefaultProxyBurst, "proxy polls and answers a source may make at once")
	fs.IntVar(&o.rateSources, "rate-limit-sources", ratelimit.DefaultMaxSources, "most sources each rate limiter tracks; beyond it new sources share one bucket")
	fs.IntVar(&o.rateIPv6Prefix, "rate-limit-ipv6-prefix", ratelimit.DefaultIPv6Prefix, "prefix length by which IPv6 sources are grouped for rate limits")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "loopback address for a debug listener with /debug/pprof/ (goroutines, heap); empty: none")
	fs.DurationVar(&o.pollUnrestricted, "poll-interval-unrestricted", broker.DefaultPollInterval, "NextPoll sent to unrestricted proxies (0 omits NextPoll)")
	fs.DurationVar(&o.pollRestricted, "poll-interval-restricted", broker.DefaultPollInterval, "NextPoll sent to restricted and unknown proxies (0 omits NextPoll)")
	fs.StringVar(&o.pollIntervalFile, "poll-interval-filepath", "", `JSON file {"unrestricted_poll_interval":ms,"restricted_poll_interval":ms}, reloaded on SIGHUP; overrides the -poll-interval flags`)
	fs.DurationVar(&o.proxyTimeout, "proxy-timeout", broker.DefaultProxyTimeout, "how long a proxy poll is held waiting for a client")
	fs.DurationVar(&o.clientTimeout, "client-timeout", broker.DefaultClientTimeout, "how long a matched client waits for the proxy's answer")
	fs.IntVar(&o.maxWaiting, "max-waiting-proxies", broker.DefaultMaxWaitingProxies, "most proxy polls held at once; more get \"no match\" at once (negative: no limit)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, nil
}

// forwarded builds the forwarding-header trust from the flags.
func (o *options) forwarded() (broker.ForwardedConfig, error) {
	fc := broker.ForwardedConfig{Hops: o.trustedHops}
	h, ok := broker.ParseForwardedHeader(o.forwardedHeader)
	if !ok {
		return fc, fmt.Errorf("-forwarded-header %q: want %s or %s", o.forwardedHeader, broker.HeaderXForwardedFor, broker.HeaderForwarded)
	}
	fc.Header = h
	if o.trustedHops < 1 {
		return fc, errors.New("-trusted-hops must be at least 1")
	}
	for _, s := range strings.Split(o.trustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return fc, fmt.Errorf("-trusted-proxies: %w", err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		fc.Proxies = append(fc.Proxies, p.Masked())
	}
	return fc, nil
}

// serveDebug starts the debug listener, which must be on loopback: it
// shows the broker's internals.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-debug-addr: %w", err)
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		return fmt.Errorf("-debug-addr %q: must be a loopback IP address and port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // CPU profiles take 30 s by default
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	context.AfterFunc(ctx, func() { srv.Close() })
	go srv.Serve(ln)
	log.Info("debug listener", "addr", ln.Addr().String())
	return nil
}

// tlsMode checks that exactly one way of serving was chosen.
func (o *options) tlsMode() (string, error) {
	var modes []string
	if o.acmeHostnames != "" {
		modes = append(modes, "-acme-hostnames")
	}
	if o.certFile != "" || o.keyFile != "" {
		if o.certFile == "" || o.keyFile == "" {
			return "", errors.New("-cert and -key must be given together")
		}
		modes = append(modes, "-cert/-key")
	}
	if o.disableTLS {
		modes = append(modes, "-disable-tls")
	}
	if o.acmeEmail != "" && o.acmeHostnames == "" {
		return "", errors.New("-acme-email needs -acme-hostnames")
	}
	switch len(modes) {
	case 0:
		return "", errors.New("one of -acme-hostnames, -cert and -key, or -disable-tls is required")
	case 1:
		return modes[0], nil
	}
	return "", fmt.Errorf("%s cannot be combined", strings.Join(modes, ", "))
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snowfall-broker:", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	if o.showVersion {
		fmt.Fprintln(os.Stderr, "snowfall-broker", version.String())
		return nil
	}
	mode, err := o.tlsMode()
	if err != nil {
		return err
	}
	log := safelog.NewLogger(os.Stderr, slog.LevelInfo, o.unsafeLogging)

	cfg := broker.Config{
		AllowedRelayPattern:      o.allowedRelayPattern,
		DefaultRelayPattern:      o.defaultRelayPattern,
		ProxyTimeout:             o.proxyTimeout,
		ClientTimeout:            o.clientTimeout,
		PollIntervalUnrestricted: o.pollUnrestricted,
		PollIntervalRestricted:   o.pollRestricted,
		MaxWaitingProxies:        o.maxWaiting,
		TrustForwarded:           o.trustForwarded,
		MaxSidBytes:              o.maxSidBytes,
		MaxSDPBytes:              o.maxSDPBytes,
		ClientRate:               o.clientRate,
		ClientBurst:              o.clientBurst,
		ProxyRate:                o.proxyRate,
		ProxyBurst:               o.proxyBurst,
		RateLimitSources:         o.rateSources,
		RateLimitIPv6Prefix:      o.rateIPv6Prefix,
		MetricsInterval:          o.metricsInterval,
		Logger:                   log,
	}
	if cfg.Forwarded, err = o.forwarded(); err != nil {
		return err
	}
	if o.maxSidBytes < 1 || o.maxSDPBytes < 1 {
		return errors.New("-max-sid-bytes and -max-sdp-bytes must be positive")
	}
	// On the command line 0 turns a limit off (the library reads zero as
	// "default").
	if cfg.ClientRate <= 0 {
		cfg.ClientRate = -1
	}
	if cfg.ProxyRate <= 0 {
		cfg.ProxyRate = -1
	}
	// Zero durations mean "omit NextPoll" on the command line.
	if cfg.PollIntervalUnrestricted == 0 {
		cfg.PollIntervalUnrestricted = -1
	}
	if cfg.PollIntervalRestricted == 0 {
		cfg.PollIntervalRestricted = -1
	}
	if o.bridgeListPath != "" {
		if cfg.Bridges, err = bridgelist.Load(o.bridgeListPath); err != nil {
			return err
		}
		log.Info("bridge list loaded", "bridges", len(cfg.Bridges.Bridges()))
	}
	if !o.disableGeoip {
		if cfg.Geoip, err = geoip.Load(o.geoipDB, o.geoip6DB); err != nil {
			return err
		}
		n4, n6 := cfg.Geoip.Len()
		log.Info("geoip loaded", "ipv4-ranges", n4, "ipv6-ranges", n6)
	}
	var metricsOut io.Writer = os.Stdout
	if o.metricsLog != "" {
		f, err := os.OpenFile(o.metricsLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		metricsOut = f
		cfg.MetricsLogPath = o.metricsLog
	}
	cfg.MetricsLog = metricsOut
	if o.ipCountLog != "" {
		f, err := os.OpenFile(o.ipCountLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		counter, err := ipcount.New(f, o.ipCountInterval)
		if err != nil {
			return err
		}
		defer counter.Close()
		cfg.OnProxyAddr = counter.Add
	}

	if o.disableTLS && !o.trustForwarded && (o.clientRate > 0 || o.proxyRate > 0) {
		log.Warn("-disable-tls without -trust-forwarded: if a TLS-terminating front relays the requests, they all come from its address and share one rate limit; set -trust-forwarded (with -trusted-proxies) or turn the limits off with -client-rate 0 -proxy-rate 0")
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	if o.pollIntervalFile != "" {
		loadPollIntervals(b, o.pollIntervalFile, log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.debugAddr != "" {
		if err := serveDebug(ctx, o.debugAddr, log); err != nil {
			return err
		}
	}

	var tlsConfig *tls.Config
	var certs *certReloader
	switch mode {
	case "-acme-hostnames":
		tlsConfig, err = acmeConfig(ctx, o, log)
	case "-cert/-key":
		certs, err = newCertReloader(o.certFile, o.keyFile)
		if err == nil {
			tlsConfig = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
		}
	}
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			reload(b, o, certs, log)
		}
	}()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	log.Info("snowfall-broker listening", "addr", ln.Addr().String(), "tls", mode, "version", version.String())
	err = b.Serve(ctx, ln, tlsConfig)
	log.Info("snowfall-broker stopped")
	return err
}

// reload re-reads what an operator may update in place.
func reload(b *broker.Broker, o *options, certs *certReloader, log *slog.Logger) {
	log.Info("SIGHUP: reloading")
	if !o.disableGeoip {
		if t, err := geoip.Load(o.geoipDB, o.geoip6DB); err != nil {
			log.Error("reloading geoip; keeping the old tables", "err", err)
		} else {
			b.SetGeoip(t)
		}
	}
	if o.bridgeListPath != "" {
		l, err := bridgelist.Load(o.bridgeListPath)
		if err == nil {
			err = b.SetBridges(l)
		}
		if err != nil {
			log.Error("reloading bridge list; keeping the old list", "err", err)
		}
	}
	if o.pollIntervalFile != "" {
		loadPollIntervals(b, o.pollIntervalFile, log)
	}
	if certs != nil {
		if err := certs.load(); err != nil {
			log.Error("reloading certificate; keeping the old one", "err", err)
		}
	}
}

func loadPollIntervals(b *broker.Broker, path string, log *slog.Logger) {
	u, r, err := broker.LoadPollIntervals(path)
	if err != nil {
		log.Error("loading poll intervals", "err", err)
		return
	}
	b.SetPollIntervals(u, r)
	log.Info("poll intervals", "unrestricted", u, "restricted", r)
}

func acmeConfig(ctx context.Context, o *options, log *slog.Logger) (*tls.Config, error) {
	certs, err := acmecert.New(acmecert.Config{
		Hostnames: acmecert.ParseHostnames(o.acmeHostnames),
		Email:     o.acmeEmail,
		CacheDir:  o.acmeCache,
	})
	if err != nil {
		return nil, err
	}
	// Without the HTTP-01 responder, TLS-ALPN-01 on the TLS port may still
	// succeed (it needs port 443), and cached certificates still serve.
	if err := certs.ServeHTTP01(ctx, ":80", log); err != nil {
		log.Warn("no ACME HTTP-01 responder", "err", err)
	}
	return certs.TLSConfig("http/1.1"), nil
}

// certReloader serves a certificate from files that SIGHUP re-reads.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile}
	return c, c.load()
}

func (c *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading -cert/-key: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}
