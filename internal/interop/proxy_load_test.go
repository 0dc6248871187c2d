//go:build integration

package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// ownProxyChain is a chain whose proxy is our snowfall-proxy started with
// extra flags (Start runs proxies with fixed ones).
type ownProxyChain struct {
	*Chain
	proxy    *testbed.Process
	proxyLog string
}

func startOwnProxyChain(ctx context.Context, t *testing.T, extra ...string) *ownProxyChain {
	t.Helper()
	c := &Chain{Cfg: Config{Dir: artifacts(t), Bins: bins, Logf: t.Logf, Client: Debian, Proxy: Snowfall, Proxies: 1}}
	t.Cleanup(c.Close)
	fail := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	c.Fingerprint, err = randomFingerprint()
	fail(err)
	c.Net, err = testbed.NewNetwork(ctx)
	fail(err)
	c.onClose(func() { c.Net.Close() })
	c.Cli, err = c.Net.AddHost(ctx, "cli", testbed.ClientIP)
	fail(err)
	prx, err := c.Net.AddHost(ctx, "prx0", testbed.ProxyIP)
	fail(err)
	c.Prx = []*testbed.Namespace{prx}
	c.STUN, err = testbed.StartSTUNServer(c.Net.Server,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	fail(err)
	c.onClose(func() { c.STUN.Close() })
	c.Target, err = testbed.StartTarget(c.Net.Server, netip.AddrPortFrom(testbed.ServerIP, TargetPort).String())
	fail(err)
	c.onClose(func() { c.Target.Close() })
	fail(c.startBridge(ctx, c.Target.Addr))
	fail(c.startBroker(ctx))

	path, err := bins.Path(ctx, "snowfall-proxy")
	fail(err)
	oc := &ownProxyChain{Chain: c, proxyLog: filepath.Join(c.Cfg.Dir, "proxy0.log")}
	args := append([]string{
		"-broker", c.BrokerURL, "-relay", c.RelayURL,
		"-allow-non-tls-relay", "-allowed-relay-hostname-pattern", relayPattern,
		"-stun", c.STUN.URL(), "-nat-retest-interval", "0s",
		"-unsafe-logging", "-verbose", "-log", oc.proxyLog,
	}, extra...)
	oc.proxy, err = testbed.StartProcess(testbed.ProcessConfig{Name: "proxy0", NS: prx, Path: path, Args: args, LogDir: c.Cfg.Dir})
	fail(err)
	c.ProxyProcs = []*testbed.Process{oc.proxy}
	c.track(oc.proxy)
	fail(c.startClient(ctx))
	return oc
}

func (oc *ownProxyChain) log(t *testing.T) string {
	b, err := os.ReadFile(oc.proxyLog)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// relayConns counts the proxy's established WebSocket connections to the
// bridge, seen from the kernel rather than from the proxy's own counters.
func relayConns(ctx context.Context, ns *testbed.Namespace) (int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name,
		"ss", "-Htn", "state", "established", "dst", fmt.Sprintf("%s:%d", testbed.ServerIP, BridgePort)).Output()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n, nil
}

// metricValue reads one sample from the proxy's Prometheus endpoint.
func metricValue(ctx context.Context, ns *testbed.Namespace, url, name string) (float64, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(ctx, network, addr)
		},
	}, Timeout: 5 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// echoStream talks to the target's ECHO service in rounds, checking every
// byte that comes back.
type echoStream struct {
	conn      net.Conn
	src, want *testbed.Stream
	total     int64
}

func startEcho(conn net.Conn, seed uint64) (*echoStream, error) {
	if _, err := io.WriteString(conn, "ECHO\n"); err != nil {
		return nil, err
	}
	return &echoStream{conn: conn, src: testbed.NewStream(seed), want: testbed.NewStream(seed)}, nil
}

// round sends n more bytes and waits until they have come back intact.
func (e *echoStream) round(ctx context.Context, n int64) error {
	defer context.AfterFunc(ctx, func() { e.conn.SetDeadline(time.Now()) })()
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyN(e.conn, e.src, n)
		werr <- err
	}()
	got := make([]byte, 64*1024)
	want := make([]byte, len(got))
	for left := n; left > 0; {
		k := int(min(left, int64(len(got))))
		if _, err := io.ReadFull(e.conn, got[:k]); err != nil {
			return fmt.Errorf("after %d bytes: %w", e.total, err)
		}
		io.ReadFull(e.want, want[:k])
		if !bytes.Equal(got[:k], want[:k]) {
			return fmt.Errorf("bytes differ after %d", e.total)
		}
		e.total += int64(k)
		left -= int64(k)
	}
	return <-werr
}

// TestProxyCapacityUnderBurst opens three streams at once through Tor's
// client (each its own snowflake, so its own client of the proxy) against
// our proxy limited to two clients. Two are served and held open; the
// third waits while they are; once they finish it is served too. Every
// byte is checked, and the proxy never relays more than two clients at a
// time, counted by the kernel (its TCP connections to the bridge) and by
// its metrics.
func TestProxyCapacityUnderBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	metricsURL := fmt.Sprintf("http://%s:9999/internal/metrics", testbed.ProxyIP)
	oc := startOwnProxyChain(ctx, t, "-capacity", "2", "-metrics", "-metrics-address", testbed.ProxyIP.String(),
		"-metrics-port", "9999", "-summary-interval", "10s")

	var (
		mu                 sync.Mutex
		maxConns, maxGauge int
		samples            int
	)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for ; sampleCtx.Err() == nil; <-tick.C {
			n, err := relayConns(sampleCtx, oc.Prx[0])
			g, gerr := metricValue(sampleCtx, oc.Prx[0], metricsURL, "tor_snowflake_proxy_clients")
			mu.Lock()
			if err == nil && gerr == nil {
				maxConns = max(maxConns, n)
				maxGauge = max(maxGauge, int(g))
				samples++
			}
			mu.Unlock()
		}
	}()

	const streams = 3
	served := make(chan int, streams)
	release := make(chan struct{})
	errs := make(chan error, streams)   // every stream's outcome
	failed := make(chan error, streams) // the failures among them
	fail := func(err error) { failed <- err; errs <- err }
	for i := range streams {
		go func() {
			conn, err := oc.Dial(ctx)
			if err != nil {
				fail(fmt.Errorf("stream %d: dial: %w", i, err))
				return
			}
			defer conn.Close()
			e, err := startEcho(conn, uint64(200+i))
			if err == nil {
				err = e.round(ctx, 1000) // returns once a proxy serves this stream
			}
			if err != nil {
				fail(fmt.Errorf("stream %d: first round: %w", i, err))
				return
			}
			served <- i
			select {
			case <-release:
			case <-ctx.Done():
			}
			if err := e.round(ctx, 1_000_000); err != nil {
				fail(fmt.Errorf("stream %d: second round: %w", i, err))
				return
			}
			t.Logf("stream %d: %d bytes echoed intact", i, e.total)
			errs <- nil
		}()
	}
	waitServed := func(what string) int {
		select {
		case i := <-served:
			return i
		case err := <-failed:
			t.Fatalf("%s: %v\n%s", what, err, testbed.Tail(oc.proxyLog, 20))
		case <-ctx.Done():
			t.Fatalf("%s: %v\n%s", what, ctx.Err(), testbed.Tail(oc.proxyLog, 20))
		}
		return -1
	}
	first, second := waitServed("first client"), waitServed("second client")
	t.Logf("streams %d and %d served", first, second)
	// Full: the third client must wait, however long we hold the two.
	select {
	case i := <-served:
		t.Fatalf("stream %d served while the proxy was at capacity", i)
	case err := <-failed:
		t.Fatalf("while full: %v", err)
	case <-time.After(30 * time.Second):
	}
	if n, err := relayConns(ctx, oc.Prx[0]); err != nil || n != 2 {
		t.Errorf("while full: %d relay connections (%v), want 2", n, err)
	}
	close(release)
	third := waitServed("third client, after the others finished")
	t.Logf("stream %d served once a slot was free", third)
	for range streams {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	stopSampling()
	<-sampled
	t.Logf("most relay connections at once: %d (kernel), %d (metrics), over %d samples", maxConns, maxGauge, samples)
	if maxConns != 2 || maxGauge != 2 {
		t.Errorf("capacity 2: peak %d relay connections, %d clients; want exactly 2", maxConns, maxGauge)
	}
	if err := oc.CheckAlive(); err != nil {
		t.Error(err)
	}
	// Connections are counted when they end; the next summary (every 10 s
	// here) reports them.
	summary := regexp.MustCompile(`In the last 10s, there were [1-9]\d* connections\. Traffic Relayed ↑ [1-9]\d* KB, ↓ [1-9]\d* KB\.`)
	wctx, wcancel := context.WithTimeout(ctx, 25*time.Second)
	defer wcancel()
	if err := testbed.WaitFile(wctx, oc.proxyLog, summary.MatchString); err != nil {
		t.Errorf("no summary line with connections in the proxy log: %v", err)
	}
}

// TestProxyDeadRelayAndBroker stops the bridge, then the broker, under a
// running proxy: each failure gives clear log lines, and polling backs off
// instead of spinning.
func TestProxyDeadRelayAndBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	oc := startOwnProxyChain(ctx, t)
	// First show the chain works.
	if tr, err := testbed.Echo(ctx, dialChain(ctx, t, oc.Chain), 100_000, 1); err != nil {
		t.Fatalf("echo through the healthy chain: %v", err)
	} else {
		t.Logf("healthy: %v", tr)
	}

	// Dead relay: the proxy still answers clients but cannot reach the
	// bridge; it says so and closes the client.
	oc.Bridge.Stop(5 * time.Second)
	dctx, dcancel := context.WithTimeout(ctx, 40*time.Second)
	if conn, err := oc.Dial(dctx); err == nil {
		testbed.Echo(dctx, conn, 1000, 2) // fails: nothing behind the proxy
	}
	dcancel()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := testbed.WaitFile(wctx, oc.proxyLog, func(s string) bool { return strings.Contains(s, "cannot reach relay") }); err != nil {
		t.Fatalf("%v\n%s", err, testbed.Tail(oc.proxyLog, 20))
	}
	log := oc.log(t)
	if !strings.Contains(log, "cannot reach relay; closing client and slowing polls") ||
		!strings.Contains(log, "consecutive_relay_failures=1") || !strings.Contains(log, "connection refused") {
		t.Fatalf("no clear log line for the dead relay:\n%s", testbed.Tail(oc.proxyLog, 20))
	}

	// Dead broker: polls fail and back off. Wait for three failures in a
	// row, then check from the log that each retry came no sooner than
	// the wait announced before it, and that the waits grew: a proxy that
	// spins fails this however fast or slow the machine is.
	oc.Broker.Stop(5 * time.Second)
	before := len(pollFailures(oc.log(t)))
	wctx, wcancel = context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	if err := testbed.WaitFile(wctx, oc.proxyLog, func(s string) bool { return len(pollFailures(s)) >= before+3 }); err != nil {
		t.Fatalf("fewer than 3 failed polls after the broker stopped: %v\n%s", err, testbed.Tail(oc.proxyLog, 10))
	}
	log = oc.log(t)
	fails := pollFailures(log)[before:]
	var waits []time.Duration
	for i, f := range fails {
		waits = append(waits, f.retryIn)
		if f.consecutive != i+1 {
			t.Errorf("failure %d logged consecutive_failures=%d", i+1, f.consecutive)
		}
		if i == 0 {
			continue
		}
		// Log times have millisecond resolution, like retry_in.
		if gap := f.at.Sub(fails[i-1].at); gap < fails[i-1].retryIn-2*time.Millisecond {
			t.Errorf("poll %d came %v after the previous failure, which announced a wait of %v", i+1, gap, fails[i-1].retryIn)
		}
		if f.retryIn < fails[i-1].retryIn {
			t.Errorf("back-off shrank: %v", waits)
		}
	}
	if waits[0] < proxyMinPoll || waits[len(waits)-1] <= waits[0] {
		t.Errorf("back-off waits %v: want at least %v, growing", waits, proxyMinPoll)
	}
	t.Logf("back-off waits: %v", waits)
	if !strings.Contains(log, "connection refused") {
		t.Errorf("broker failure lines do not say why")
	}
	if !oc.proxy.Running() {
		t.Errorf("proxy exited: %s", oc.proxy.ExitStatus())
	}
}

// proxyMinPoll is the shortest wait snowfall-proxy ever announces
// (proxy.MinPollInterval).
const proxyMinPoll = 2 * time.Second

// pollFailure is one "broker poll failed" line of snowfall-proxy's log.
type pollFailure struct {
	at          time.Time
	consecutive int
	retryIn     time.Duration
}

var pollFailureRE = regexp.MustCompile(`(?m)^time=(\S+) .*msg="broker poll failed; backing off".* consecutive_failures=(\d+) retry_in=(\S+)`)

// pollFailures parses the failed-poll lines of a log, in order; a line it
// cannot parse is left out (and then missed by the caller's count).
func pollFailures(log string) []pollFailure {
	var out []pollFailure
	for _, m := range pollFailureRE.FindAllStringSubmatch(log, -1) {
		at, err1 := time.Parse(time.RFC3339Nano, m[1])
		n, err2 := strconv.Atoi(m[2])
		d, err3 := time.ParseDuration(m[3])
		if err1 == nil && err2 == nil && err3 == nil {
			out = append(out, pollFailure{at, n, d})
		}
	}
	return out
}
