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
		for sampleCtx.Err() == nil {
			n, err := relayConns(sampleCtx, oc.Prx[0])
			g, gerr := metricValue(sampleCtx, oc.Prx[0], metricsURL, "tor_snowflake_proxy_clients")
			mu.Lock()
			if err == nil && gerr == nil {
				maxConns = max(maxConns, n)
				maxGauge = max(maxGauge, int(g))
				samples++
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
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
	deadline := time.Now().Add(25 * time.Second)
	for !summary.MatchString(oc.log(t)) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	if !summary.MatchString(oc.log(t)) {
		t.Errorf("no summary line with connections in the proxy log")
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
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(oc.log(t), "cannot reach relay") && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	log := oc.log(t)
	if !strings.Contains(log, "cannot reach relay; closing client and slowing polls") ||
		!strings.Contains(log, "consecutive_relay_failures=1") || !strings.Contains(log, "connection refused") {
		t.Fatalf("no clear log line for the dead relay:\n%s", testbed.Tail(oc.proxyLog, 20))
	}

	// Dead broker: polls fail and back off.
	oc.Broker.Stop(5 * time.Second)
	before := strings.Count(oc.log(t), "broker poll failed")
	time.Sleep(25 * time.Second)
	log = oc.log(t)
	failed := strings.Count(log, "broker poll failed") - before
	// From 5 s doubling with up to half jitter: at most 2.5+5+10 s of
	// waits fit in 25 s after the first failure, so at most 4 attempts.
	if failed < 2 || failed > 4 {
		t.Fatalf("%d failed polls logged in 25 s, want 2 to 4 (backed off, not spinning):\n%s", failed, testbed.Tail(oc.proxyLog, 10))
	}
	var waits []time.Duration
	for _, m := range regexp.MustCompile(`broker poll failed; backing off.*retry_in=(\S+)`).FindAllStringSubmatch(log, -1) {
		d, err := time.ParseDuration(m[1])
		if err == nil {
			waits = append(waits, d)
		}
	}
	if len(waits) < 2 || waits[len(waits)-1] < 5*time.Second {
		t.Errorf("back-off did not grow: %v", waits)
	}
	t.Logf("back-off waits: %v", waits)
	if !strings.Contains(log, "connection refused") {
		t.Errorf("broker failure lines do not say why")
	}
	if !oc.proxy.Running() {
		t.Errorf("proxy exited: %s", oc.proxy.ExitStatus())
	}
}
