// Package interop assembles complete Snowflake chains on a testbed network
// (internal/testbed) from Snowfall's programs and Tor's released ones, for the
// integration tests in this directory and for the demo (cmd/demo).
//
// A chain is: a PT client in the "cli" namespace, one or more proxies in
// "prx" namespaces, and in the "srv" namespace the broker, the bridge server,
// a STUN server with two addresses, and the target service that stands in
// for the bridge's ORPort. Bytes written to the client's SOCKS port arrive at
// the target, which checks them.
package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Fixed ports: every run has namespaces of its own, so nothing collides.
const (
	BrokerPort = 8080
	BridgePort = 8081
	TargetPort = 9000
	STUNPort   = 3478
	STUNPort2  = 3479
)

// PlaceholderBridge is the bridge address of Bridge lines and SOCKS requests;
// a Snowflake client ignores it (nothing listens there).
var PlaceholderBridge = netip.MustParseAddrPort("198.51.100.3:80")

// Implementations of a chain role.
const (
	Debian   = "debian"   // Tor's Snowflake 2.5.1 as packaged by Debian (client, proxy)
	Snowfall = "snowfall" // ours (every role)
	// Upstream is Tor's current release (every role), built from the
	// test-only module in internal/interop/upstream (2.14.1 today).
	Upstream = "upstream"
)

// Roles lists the implementations each role can take.
var Roles = map[string][]string{
	"client": {Snowfall, Debian, Upstream},
	"proxy":  {Snowfall, Debian, Upstream},
	"broker": {Snowfall, Upstream},
	"bridge": {Snowfall, Upstream},
}

// Logf receives progress messages (t.Logf, or a printer in the demo).
type Logf func(format string, args ...any)

// Config selects what a chain is made of.
type Config struct {
	// Dir receives every log and state directory.
	Dir string
	// Bins finds Snowfall's programs.
	Bins *testbed.Binaries
	Logf Logf
	// Client and Proxy choose implementations (Debian by default).
	Client, Proxy string
	// Broker and Bridge choose implementations (Snowfall by default).
	Broker, Bridge string
	// Tor holds Tor's current programs; needed when a role is Upstream.
	Tor *testbed.Upstream
	// Proxies is how many proxies to run (default 1).
	Proxies int
	// NoClient leaves the client out (for tests that run tor as the client).
	NoClient bool
	// ORPort, when set, replaces the in-process target as the bridge's
	// destination (TOR_PT_ORPORT).
	ORPort string
	// ExternalBridge leaves the bridge out: the caller runs one (for
	// example tor with snowfall-server as its transport plugin) listening on
	// ServerIP:BridgePort.
	ExternalBridge bool
	// Fingerprint is the bridge's identity; random when empty.
	Fingerprint string
	// NoProxyWait starts the client without waiting for every proxy to
	// be polling the broker (for proxies that are meant never to poll).
	NoProxyWait bool
}

// Component describes one started part of a chain, for reports.
type Component struct {
	Role, Program, Version string
	PID                    int
	NS, Addr               string
	Logs                   []string
}

// Chain is a running chain. Close stops everything, in reverse order.
type Chain struct {
	Cfg         Config
	Net         *testbed.Network
	Cli         *testbed.Namespace
	Prx         []*testbed.Namespace
	STUN        *testbed.STUNServer
	Target      *testbed.Target
	Bridge      *testbed.PTServer
	Broker      *testbed.Process
	ProxyProcs  []*testbed.Process
	Client      *testbed.PTClient
	Fingerprint string
	BrokerURL   string
	RelayURL    string
	// ClientLog is the PT client's own log file.
	ClientLog  string
	Components []Component

	closers []func()
	procs   []*testbed.Process
}

func (c *Chain) logf(format string, args ...any) {
	if c.Cfg.Logf != nil {
		c.Cfg.Logf(format, args...)
	}
}

func (c *Chain) onClose(f func()) { c.closers = append(c.closers, f) }

// Close stops the chain's processes and servers and removes its namespaces.
func (c *Chain) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	c.closers = nil
}

// CheckAlive reports processes of the chain that exited on their own.
func (c *Chain) CheckAlive() error {
	var errs []error
	for _, p := range c.procs {
		if dead, how := p.ExitedUnexpectedly(); dead {
			errs = append(errs, fmt.Errorf("%s exited: %s; stderr tail:\n%s", p.Name, how, testbed.Tail(p.StderrPath, 10)))
		}
	}
	return errors.Join(errs...)
}

// BridgeArgs are the bridge-line arguments a tor client would pass to the
// client PT for this chain.
func (c *Chain) BridgeArgs() []testbed.Arg {
	return []testbed.Arg{
		{Key: "url", Value: c.BrokerURL},
		{Key: "ice", Value: c.STUN.URL()},
		{Key: "fingerprint", Value: c.Fingerprint},
	}
}

// Dial opens a stream through the chain to the bridge's ORPort side.
func (c *Chain) Dial(ctx context.Context) (net.Conn, error) {
	if c.Client == nil {
		return nil, errors.New("interop: chain has no client")
	}
	return c.Client.Dial(ctx, PlaceholderBridge, c.BridgeArgs())
}

// Start builds a chain. On error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (_ *Chain, err error) {
	if cfg.Client == "" {
		cfg.Client = Debian
	}
	if cfg.Proxy == "" {
		cfg.Proxy = Debian
	}
	if cfg.Broker == "" {
		cfg.Broker = Snowfall
	}
	if cfg.Bridge == "" {
		cfg.Bridge = Snowfall
	}
	if cfg.Proxies == 0 {
		cfg.Proxies = 1
	}
	for role, impl := range map[string]string{"client": cfg.Client, "proxy": cfg.Proxy, "broker": cfg.Broker, "bridge": cfg.Bridge} {
		if !slices.Contains(Roles[role], impl) {
			return nil, fmt.Errorf("interop: no %s implementation %q (have %v)", role, impl, Roles[role])
		}
		if impl == Upstream && cfg.Tor == nil {
			return nil, fmt.Errorf("interop: %s %s needs Config.Tor", Upstream, role)
		}
	}
	c := &Chain{Cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if c.Fingerprint = cfg.Fingerprint; c.Fingerprint == "" {
		if c.Fingerprint, err = randomFingerprint(); err != nil {
			return nil, err
		}
	}

	c.Net, err = testbed.NewNetwork(ctx)
	if err != nil {
		return nil, err
	}
	c.onClose(func() { c.Net.Close() })
	srv := c.Net.Server
	if c.Cli, err = c.Net.AddHost(ctx, "cli", testbed.ClientIP); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Proxies; i++ {
		addr := testbed.ProxyIP
		for j := 0; j < i; j++ {
			addr = addr.Next()
		}
		ns, err := c.Net.AddHost(ctx, fmt.Sprintf("prx%d", i), addr)
		if err != nil {
			return nil, err
		}
		c.Prx = append(c.Prx, ns)
	}
	c.logf("network %s*: srv %s/%s, cli %s, %d proxy host(s)", c.Net.Prefix, testbed.ServerIP, testbed.ServerIP2, testbed.ClientIP, len(c.Prx))

	c.STUN, err = testbed.StartSTUNServer(srv,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	if err != nil {
		return nil, err
	}
	c.onClose(func() { c.STUN.Close() })
	c.Components = append(c.Components, Component{Role: "stun", Program: "in-process RFC 5780 STUN", NS: srv.Name,
		Addr: c.STUN.Primary.String() + " + " + c.STUN.Other.String(), PID: os.Getpid()})

	orport := cfg.ORPort
	if orport == "" {
		c.Target, err = testbed.StartTarget(srv, netip.AddrPortFrom(testbed.ServerIP, TargetPort).String())
		if err != nil {
			return nil, err
		}
		c.onClose(func() { c.Target.Close() })
		orport = c.Target.Addr
		c.Components = append(c.Components, Component{Role: "target", Program: "in-process hash-checking target", NS: srv.Name, Addr: orport, PID: os.Getpid()})
	}

	if cfg.ExternalBridge {
		c.RelayURL = "ws://" + netip.AddrPortFrom(testbed.ServerIP, BridgePort).String() + "/"
	} else if err := c.startBridge(ctx, orport); err != nil {
		return nil, err
	}
	if err := c.startBroker(ctx); err != nil {
		return nil, err
	}
	for i, ns := range c.Prx {
		if err := c.startProxy(ctx, i, ns); err != nil {
			return nil, err
		}
	}
	// A client that arrives before any proxy is told "no proxies" and,
	// for Tor's clients, retries only 10 s later: start it once every
	// proxy is polling.
	if !cfg.NoProxyWait {
		if err := c.waitProxiesPolling(ctx); err != nil {
			return nil, err
		}
	}
	if !cfg.NoClient {
		if err := c.startClient(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Chain) track(p *testbed.Process) {
	c.procs = append(c.procs, p)
	c.onClose(func() { p.Stop(5 * time.Second) })
}

// impl is the implementation of role in this chain. Chains that tests
// assemble by hand, without Start, get Start's defaults too.
func (c *Chain) impl(role string) string {
	var impl string
	switch role {
	case "client":
		impl = c.Cfg.Client
	case "proxy":
		impl = c.Cfg.Proxy
	case "broker":
		impl = c.Cfg.Broker
	case "bridge":
		impl = c.Cfg.Bridge
	}
	if impl != "" {
		return impl
	}
	if role == "client" || role == "proxy" {
		return Debian
	}
	return Snowfall
}

// programPath finds the program that implements role in this chain, with
// the flag that makes it print its version.
func (c *Chain) programPath(ctx context.Context, role string) (path, versionFlag string, err error) {
	impl := c.impl(role)
	switch impl {
	case Snowfall:
		versionFlag = "-version"
		if role == "bridge" {
			versionFlag = "--version"
		}
		name := map[string]string{"bridge": "snowfall-server"}[role]
		if name == "" {
			name = "snowfall-" + role
		}
		path, err = c.Cfg.Bins.Path(ctx, name)
	case Debian:
		path, err = testbed.SystemBinary("snowflake-" + role)
		versionFlag = "-version"
	case Upstream:
		name := map[string]string{"bridge": "server"}[role]
		if name == "" {
			name = role
		}
		path, err = c.Cfg.Tor.Path(name)
		versionFlag = "-version"
	default:
		err = fmt.Errorf("interop: unknown %s %q", role, impl)
	}
	return path, versionFlag, err
}

func (c *Chain) startBridge(ctx context.Context, orport string) error {
	path, vflag, err := c.programPath(ctx, "bridge")
	if err != nil {
		return err
	}
	bind := netip.AddrPortFrom(testbed.ServerIP, BridgePort).String()
	logPath := filepath.Join(c.Cfg.Dir, "bridge.log")
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// Both take the same flags: plain WebSocket (no ACME), a log file of
	// their own, addresses kept.
	c.Bridge, err = testbed.StartPTServer(sctx, testbed.PTServerConfig{
		Name: "bridge", Path: path, NS: c.Net.Server, LogDir: c.Cfg.Dir,
		Args:      []string{"--disable-tls", "--log", logPath, "--unsafe-logging"},
		Transport: "snowflake", BindAddr: bind, ORPort: orport,
	})
	if err != nil {
		return fmt.Errorf("bridge: %w; log tail:\n%s", err, testbed.Tail(logPath, 10))
	}
	c.track(c.Bridge.Process)
	c.RelayURL = "ws://" + bind + "/"
	c.Components = append(c.Components, Component{Role: "bridge", Program: path, Version: programVersion(ctx, path, vflag),
		PID: c.Bridge.PID(), NS: c.Net.Server.Name, Addr: c.Bridge.Addr,
		Logs: []string{logPath, c.Bridge.StderrPath}})
	c.logf("bridge: %s (%s) pid %d, SMETHOD snowflake %s %s, ORPort %s", filepath.Base(path), c.impl("bridge"), c.Bridge.PID(), c.Bridge.Addr, c.Bridge.MethodArgs, orport)
	return nil
}

func (c *Chain) bridgeList() ([]byte, error) {
	line, err := json.Marshal(struct {
		DisplayName      string `json:"displayName"`
		WebSocketAddress string `json:"webSocketAddress"`
		Fingerprint      string `json:"fingerprint"`
	}{"test", c.RelayURL, c.Fingerprint})
	return append(line, '\n'), err
}

// relayPattern admits exactly the bridge's host.
var relayPattern = "^" + testbed.ServerIP.String() + "$"

// Where Debian's tor-geoipdb puts the databases Tor's broker reads.
const (
	geoipPath  = "/usr/share/tor/geoip"
	geoip6Path = "/usr/share/tor/geoip6"
)

func (c *Chain) startBroker(ctx context.Context) error {
	addr := netip.AddrPortFrom(testbed.ServerIP, BrokerPort)
	c.BrokerURL = "http://" + addr.String() + "/"
	list, err := c.bridgeList()
	if err != nil {
		return err
	}
	path, vflag, err := c.programPath(ctx, "broker")
	if err != nil {
		return err
	}
	listPath := filepath.Join(c.Cfg.Dir, "bridge-list.json")
	if err := os.WriteFile(listPath, list, 0o644); err != nil {
		return err
	}
	args := []string{
		"-addr", addr.String(), "-disable-tls",
		"-bridge-list-path", listPath,
		"-allowed-relay-pattern", relayPattern,
		"-unsafe-logging",
		"-metrics-log", filepath.Join(c.Cfg.Dir, "broker-metrics.log"),
	}
	switch c.impl("broker") {
	case Snowfall:
		// NextPoll: our proxies come back for the next client in 2 s
		// rather than the production 20 s (Tor's 2.5.1 ignores it).
		args = append(args, "-disable-geoip", "-poll-interval-unrestricted", "2s", "-poll-interval-restricted", "2s")
	case Upstream:
		// Tor's broker exits when it cannot read its geoip files, which
		// it uses for metrics, as in production; the poll interval
		// file is in milliseconds.
		pollFile := filepath.Join(c.Cfg.Dir, "broker-poll-interval.json")
		if err := os.WriteFile(pollFile, []byte(`{"unrestricted_poll_interval":2000,"restricted_poll_interval":2000}`+"\n"), 0o644); err != nil {
			return err
		}
		args = append(args, "-geoipdb", geoipPath, "-geoip6db", geoip6Path, "-poll-interval-filepath", pollFile)
	}
	p, err := testbed.StartProcess(testbed.ProcessConfig{Name: "broker", NS: c.Net.Server, Path: path, LogDir: c.Cfg.Dir, Args: args})
	if err != nil {
		return err
	}
	c.Broker = p
	c.track(p)
	if err := waitListening(ctx, c.Net.Server, addr.String(), p); err != nil {
		return fmt.Errorf("broker: %w; stderr tail:\n%s", err, testbed.Tail(p.StderrPath, 10))
	}
	version := programVersion(ctx, path, vflag)
	if c.impl("broker") == Upstream {
		// Tor's broker has no -version flag: name the module version built.
		version = "snowflake-broker " + strings.TrimPrefix(c.Cfg.Tor.Version, "v") + " (module version)"
	}
	c.Components = append(c.Components, Component{Role: "broker", Program: path, Version: version,
		PID: p.PID(), NS: c.Net.Server.Name, Addr: addr.String(), Logs: []string{p.StderrPath}})
	c.logf("broker: %s (%s) pid %d at %s", filepath.Base(path), c.impl("broker"), p.PID(), c.BrokerURL)
	return nil
}

func (c *Chain) startProxy(ctx context.Context, i int, ns *testbed.Namespace) error {
	name := fmt.Sprintf("proxy%d", i)
	logPath := filepath.Join(c.Cfg.Dir, name+".log")
	path, vflag, err := c.programPath(ctx, "proxy")
	if err != nil {
		return err
	}
	// The flags all three share: a plain-WebSocket relay on the testbed,
	// our STUN server, no NAT retests, addresses kept in the logs.
	args := []string{
		"-broker", c.BrokerURL, "-relay", c.RelayURL,
		"-allow-non-tls-relay", "-allowed-relay-hostname-pattern", relayPattern,
		"-stun", c.STUN.URL(), "-nat-retest-interval", "0s",
		"-unsafe-logging",
	}
	switch c.impl("proxy") {
	case Debian:
		// With -log it writes everything to stderr as well: keep stderr only.
		args = append(args, "-verbose")
		logPath = ""
	case Upstream:
		// 2 s is the shortest poll interval it accepts (production: 5 s).
		args = append(args, "-verbose", "-poll-interval", "2s", "-log", logPath)
	case Snowfall:
		args = append(args, "-log", logPath)
	}
	p, err := testbed.StartProcess(testbed.ProcessConfig{Name: name, NS: ns, Path: path, Args: args, LogDir: c.Cfg.Dir})
	if err != nil {
		return err
	}
	if logPath == "" {
		logPath = p.StderrPath
	}
	c.ProxyProcs = append(c.ProxyProcs, p)
	c.track(p)
	c.Components = append(c.Components, Component{Role: name, Program: path, Version: programVersion(ctx, path, vflag),
		PID: p.PID(), NS: ns.Name, Addr: ns.Addr.String(), Logs: uniq(logPath, p.StderrPath)})
	c.logf("%s: %s (%s) pid %d at %s", name, filepath.Base(path), c.impl("proxy"), p.PID(), ns.Addr)
	return nil
}

func (c *Chain) startClient(ctx context.Context) error {
	c.ClientLog = filepath.Join(c.Cfg.Dir, "client.log")
	path, vflag, err := c.programPath(ctx, "client")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// Rendezvous settings travel as SOCKS arguments, as they do from tor.
	c.Client, err = testbed.StartPTClient(sctx, testbed.PTClientConfig{
		Name: "client", Path: path, NS: c.Cli, LogDir: c.Cfg.Dir, Transport: "snowflake",
		Args: []string{"-log", c.ClientLog, "-unsafe-logging"},
	})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	c.track(c.Client.Process)
	c.Components = append(c.Components, Component{Role: "client", Program: path, Version: programVersion(ctx, path, vflag),
		PID: c.Client.PID(), NS: c.Cli.Name, Addr: c.Client.SOCKSAddr + " (SOCKS5)", Logs: []string{c.ClientLog, c.Client.StderrPath}})
	c.logf("client: %s (%s) pid %d, SOCKS5 %s", filepath.Base(path), c.impl("client"), c.Client.PID(), c.Client.SOCKSAddr)
	return nil
}

// availableRE reads the proxy count from a broker's /debug page (ours
// and Tor's print the same first line).
var availableRE = regexp.MustCompile(`(?m)^current snowflakes available: (\d+)$`)

// waitProxiesPolling waits until the broker counts every proxy of the
// chain as available, or fails saying what the broker and the proxies
// last said.
func (c *Chain) waitProxiesPolling(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: c.Net.Server.Dial}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	var page string
	err := testbed.WaitUntil(ctx, "proxies polling the broker", func() (bool, error) {
		if err := c.CheckAlive(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BrokerURL+"debug", nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		page = string(b)
		m := availableRE.FindStringSubmatch(page)
		if m == nil {
			return false, nil
		}
		n, _ := strconv.Atoi(m[1])
		return n >= len(c.Prx), nil
	})
	if err != nil {
		var tails []string
		for _, p := range c.ProxyProcs {
			tails = append(tails, p.Name+" stderr tail:\n"+testbed.Tail(p.StderrPath, 5))
		}
		return fmt.Errorf("interop: %w; broker /debug: %q\n%s", err, page, strings.Join(tails, "\n"))
	}
	c.logf("broker: %d proxy(ies) polling", len(c.Prx))
	return nil
}

// waitListening polls until addr accepts TCP connections from inside ns.
func waitListening(ctx context.Context, ns *testbed.Namespace, addr string, p *testbed.Process) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		conn, err := ns.Dial(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if p != nil && !p.Running() {
			return fmt.Errorf("%s exited: %s", p.Name, p.ExitStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not listening: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// programVersion asks a program for its version; Tor's Snowflake programs
// print it on stderr.
func programVersion(ctx context.Context, path, flag string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, flag).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if line == "" || strings.Contains(line, "flag provided but not defined") || strings.HasPrefix(line, "Usage") {
		return "?"
	}
	return line
}

func randomFingerprint() (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

func uniq(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
