// Command snowfall-proxy is a standalone Snowflake-compatible proxy. Its
// flags have the names and meanings of Tor's snowflake-proxy, so that an
// operator can swap the binaries; see doc/proxy.md and snowfall-proxy(1).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/internal/gctune"
	"github.com/snowfall-pt/snowfall/internal/geoip"
	"github.com/snowfall-pt/snowfall/internal/safelog"
	"github.com/snowfall-pt/snowfall/internal/version"
	"github.com/snowfall-pt/snowfall/proxy"
	"github.com/snowfall-pt/snowfall/proxy/metrics"
	"github.com/snowfall-pt/snowfall/proxy/pionpeer"
)

func main() {
	gctune.Apply()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	capacity          uint
	stun              string
	logFile           string
	broker            string
	relay             string
	pattern           string
	allowNonTLS       bool
	allowPrivate      bool
	keepLocal         bool
	unsafeLogging     bool
	natRetest         time.Duration
	summary           time.Duration
	verbose           bool
	portRange         string
	showVersion       bool
	pollInterval      time.Duration
	natProbe          string
	outbound          string
	disableStats      bool
	metricsOn         bool
	metricsAddr       string
	metricsPort       uint
	geoip, geoip6     string
	logLocalTime      bool
	forceUnrestricted bool
	selfTest          bool
	bandwidth         string
	stateFile         string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("snowfall-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Tor's snowflake-proxy flags, same names, defaults and meanings.
	fs.UintVar(&o.capacity, "capacity", 0, "maximum concurrent clients (0 is unlimited)")
	fs.StringVar(&o.stun, "stun", proxy.DefaultSTUNURL, "STUN servers, comma-separated stun: URLs")
	fs.StringVar(&o.logFile, "log", "", "log file to append to (default stderr)")
	fs.StringVar(&o.broker, "broker", proxy.DefaultBrokerURL, "broker URL")
	fs.StringVar(&o.relay, "relay", proxy.DefaultRelayURL, "WebSocket relay URL used when the broker names none")
	fs.StringVar(&o.pattern, "allowed-relay-hostname-pattern", proxy.DefaultRelayPattern,
		`relay hostnames the broker may send clients to: a domain suffix matched on label boundaries, "^" for an exact name; must end in "$"`)
	fs.BoolVar(&o.allowNonTLS, "allow-non-tls-relay", false, "allow relays without TLS (ws://)")
	fs.BoolVar(&o.allowPrivate, "allow-proxying-to-private-addresses", false,
		"allow relays on private, loopback and link-local addresses (for testing)")
	fs.BoolVar(&o.keepLocal, "keep-local-addresses", false, "keep local-network addresses in answers")
	fs.BoolVar(&o.unsafeLogging, "unsafe-logging", false, "keep IP addresses in the log")
	fs.DurationVar(&o.natRetest, "nat-retest-interval", proxy.DefaultNATRetestInterval,
		"how often to measure the NAT type again (0 measures only at start)")
	fs.DurationVar(&o.summary, "summary-interval", proxy.DefaultSummaryInterval,
		"how often to log a traffic summary (0 disables)")
	fs.BoolVar(&o.verbose, "verbose", false, "log per-connection details (debug level)")
	fs.StringVar(&o.portRange, "ephemeral-ports-range", "", "UDP port range for WebRTC, min:max")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.DurationVar(&o.pollInterval, "poll-interval", proxy.DefaultPollInterval,
		"delay between broker polls when the broker suggests none (at least 2s)")
	fs.StringVar(&o.natProbe, "nat-probe-server", proxy.DefaultNATProbeURL, "NAT probe service URL")
	fs.StringVar(&o.outbound, "outbound-address", "",
		"IP address to advertise to clients instead of the interface addresses")
	fs.BoolVar(&o.disableStats, "disable-stats-logger", false, "do not log traffic summaries")
	fs.BoolVar(&o.metricsOn, "metrics", false, "serve Prometheus metrics")
	fs.StringVar(&o.metricsAddr, "metrics-address", "localhost", "address for the metrics server")
	fs.UintVar(&o.metricsPort, "metrics-port", 9999, "port for the metrics server")
	fs.StringVar(&o.geoip, "geoipdb", "/usr/share/tor/geoip", "Tor IPv4 geoip file (country label of metrics)")
	fs.StringVar(&o.geoip6, "geoip6db", "/usr/share/tor/geoip6", "Tor IPv6 geoip file (country label of metrics)")
	fs.BoolVar(&o.logLocalTime, "log-local-time", false, "log local time instead of UTC")
	fs.BoolVar(&o.forceUnrestricted, "nat-type-force-unrestricted", false,
		"skip the NAT probe and report an unrestricted NAT (hosts with a public address and no firewall)")
	// Snowfall's own.
	fs.BoolVar(&o.selfTest, "self-test", false,
		"check broker, relay, STUN and NAT type, print a checklist and exit (status 0 when working)")
	fs.StringVar(&o.bandwidth, "bandwidth-limit", "",
		"cap on relayed bytes per second, all clients and both directions together, e.g. 500K or 2M (1000-based; empty is unlimited)")
	fs.StringVar(&o.stateFile, "state-file", "", "file to remember settings (the NAT type) across restarts")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, nil
}

// parseRate parses a byte rate: digits with an optional k, M or G suffix
// (powers of 1000).
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1e3
	case 'm', 'M':
		mult = 1e6
	case 'g', 'G':
		mult = 1e9
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bandwidth limit %q: want bytes per second like 500K or 2M", s)
	}
	return n * mult, nil
}

// config turns the flags into a proxy configuration with pion as its
// WebRTC, configured by wc.
func (o *options) config() (cfg proxy.Config, wc pionpeer.Config, err error) {
	if !strings.HasSuffix(o.pattern, "$") {
		return cfg, wc, fmt.Errorf(`-allowed-relay-hostname-pattern %q must end in "$"`, o.pattern)
	}
	cfg.BrokerURL = o.broker
	cfg.RelayURL = o.relay
	cfg.Policy = proxy.RelayPolicy{Pattern: o.pattern, AllowNonTLS: o.allowNonTLS, AllowPrivate: o.allowPrivate}
	cfg.STUNURLs = []string{}
	for _, s := range strings.Split(o.stun, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.STUNURLs = append(cfg.STUNURLs, s)
		}
	}
	cfg.Capacity = int(o.capacity)
	cfg.PollInterval = o.pollInterval
	if o.pollInterval < proxy.MinPollInterval {
		return cfg, wc, fmt.Errorf("-poll-interval %v: must be at least %v", o.pollInterval, proxy.MinPollInterval)
	}
	cfg.KeepLocalAddresses = o.keepLocal
	cfg.NATProbeURL = o.natProbe
	cfg.NATRetestInterval = o.natRetest
	if o.natRetest <= 0 {
		cfg.NATRetestInterval = -1
	}
	cfg.SummaryInterval = o.summary
	if o.summary <= 0 || o.disableStats {
		cfg.SummaryInterval = -1
	}
	if o.forceUnrestricted {
		cfg.ForceNATType = "unrestricted"
	}
	if o.portRange != "" {
		lo, hi, err := proxy.ParsePortRange(o.portRange)
		if err != nil {
			return cfg, wc, fmt.Errorf("-ephemeral-ports-range: %w", err)
		}
		wc.PortMin, wc.PortMax = lo, hi
	}
	if o.outbound != "" {
		a, err := netip.ParseAddr(o.outbound)
		if err != nil {
			return cfg, wc, fmt.Errorf("-outbound-address %q: not an IP address", o.outbound)
		}
		if o.keepLocal {
			return cfg, wc, errors.New("-outbound-address and -keep-local-addresses exclude each other")
		}
		wc.OutboundAddress = a
	}
	var bw int64
	bw, err = parseRate(o.bandwidth)
	if err != nil {
		return cfg, wc, err
	}
	cfg.BandwidthLimit = bw
	wc.STUNURLs = cfg.STUNURLs
	var pf *pionpeer.Factory
	pf, err = pionpeer.New(wc)
	if err != nil {
		return cfg, wc, err
	}
	cfg.PeerFactory = pf
	return cfg, wc, nil
}

// newLogger builds the log: a text log scrubbed of addresses unless unsafe
// logging was asked for, at debug level with -verbose.
func newLogger(w io.Writer, o *options) *slog.Logger {
	if !o.unsafeLogging {
		w = safelog.NewWriter(w)
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 && !o.logLocalTime {
				a.Value = slog.TimeValue(a.Value.Time().UTC())
			}
			return a
		},
	}))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "snowfall-proxy %s\n", version.String())
		return 0
	}
	cfg, _, err := o.config()
	if err != nil {
		fmt.Fprintf(stderr, "snowfall-proxy: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.selfTest {
		return selfTest(ctx, cfg, o, stdout, stderr)
	}

	logOut := stderr
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "snowfall-proxy: log file: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	log := newLogger(logOut, o)
	cfg.Logger = log
	if o.stateFile != "" {
		st, err := proxy.OpenFileStore(o.stateFile)
		if err != nil {
			log.Error("cannot open state file", "err", err)
			return 1
		}
		cfg.Store = st
	}

	var m *metrics.Metrics
	if o.metricsOn {
		geo, err := geoip.Load(o.geoip, o.geoip6)
		if err != nil {
			log.Warn("geoip databases not loaded; metrics label every country ??", "err", err)
		}
		m = metrics.New(func(a netip.Addr) string { cc, _ := geo.Country(a); return cc })
		cfg.Observer = m
	}

	p, err := proxy.New(cfg)
	if err != nil {
		log.Error("bad configuration", "err", err)
		return 2
	}
	if m != nil {
		m.RegisterClientsGauge(p.Clients)
		addr := net.JoinHostPort(o.metricsAddr, strconv.FormatUint(uint64(o.metricsPort), 10))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Error("cannot serve metrics", "addr", addr, "err", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle(metrics.Path, m.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving metrics", "url", "http://"+addr+metrics.Path)
	}
	log.Info("snowfall-proxy "+version.String(), "nat_probe", cfg.NATProbeURL, "relay", cfg.RelayURL,
		"relay_pattern", cfg.Policy.Pattern)
	if err := p.Run(ctx); err != nil {
		log.Error("proxy stopped", "err", err)
		return 1
	}
	log.Info("proxy stopped")
	return 0
}

func selfTest(ctx context.Context, cfg proxy.Config, o *options, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "snowfall-proxy %s self-test (up to a minute)…\n", version.String())
	if o.verbose {
		cfg.Logger = newLogger(stderr, o)
	}
	rep, err := proxy.SelfTest(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "snowfall-proxy: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, rep.String())
	if !rep.OK() {
		return 1
	}
	return 0
}
