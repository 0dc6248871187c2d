//go:build integration

package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Ports of the browser chain's extra services, in the server namespace.
const (
	PagePort  = 8000
	ProbePort = 8443
)

// browserTransfer is how much each direction carries through the browser;
// a browser relays about 2 MB/s here.
const browserTransfer = 3_000_000

// browserState mirrors the proxy's State (proxy-wasm/controller.go).
type browserState struct {
	Running           bool   `json:"running"`
	Phase             string `json:"phase"`
	Clients           int    `json:"clients"`
	Helped24h         int    `json:"helped24h"`
	HelpedTotal       int64  `json:"helpedTotal"`
	BytesToClients    int64  `json:"bytesToClients"`
	BytesFromClients  int64  `json:"bytesFromClients"`
	BytesTotal        int64  `json:"bytesTotal"`
	NAT               string `json:"nat"`
	Polls             int64  `json:"polls"`
	Matches           int64  `json:"matches"`
	FailedConnections int64  `json:"failedConnections"`
	ProxyType         string `json:"proxyType"`
	Error             *struct {
		Kind, Message string
	} `json:"error"`
}

// browserTools are the browser proxy's folder, its static server and the
// NAT probe, built for one test.
type browserTools struct {
	dist, serve, probetest string
}

// buildBrowserTools builds them into a directory removed after the test.
func buildBrowserTools(ctx context.Context, t *testing.T) *browserTools {
	t.Helper()
	dir := t.TempDir()
	b := &browserTools{
		dist:      filepath.Join(dir, "dist"),
		serve:     filepath.Join(dir, "serve"),
		probetest: filepath.Join(dir, "snowfall-probetest"),
	}
	sizes, err := testbed.BuildBrowserProxy(ctx, b.dist)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", sizes)
	if err := testbed.BuildPackage(ctx, "./proxy-wasm/serve", b.serve); err != nil {
		t.Fatal(err)
	}
	if err := testbed.BuildPackage(ctx, "./broker/cmd/snowfall-probetest", b.probetest); err != nil {
		t.Fatal(err)
	}
	return b
}

// pageURL is the browser proxy's page on the testbed.
var pageURL = "http://" + netip.AddrPortFrom(testbed.ServerIP, PagePort).String() + "/"

// startPageServer serves the browser proxy's folder in the server
// namespace with a config.json for the testbed's broker, bridge, STUN
// server and probe.
func startPageServer(t *testing.T, tools *browserTools, c *Chain, extra ...string) {
	t.Helper()
	args := []string{
		"-dir", tools.dist,
		"-addr", netip.AddrPortFrom(testbed.ServerIP, PagePort).String(),
		"-broker", c.BrokerURL,
		"-relay", c.RelayURL,
		"-relay-pattern", relayPattern,
		"-allow-non-tls-relay",
		"-stun", c.STUN.URL(),
		"-nat-probe", "http://" + netip.AddrPortFrom(testbed.ServerIP, ProbePort).String() + "/probe",
		"-poll-interval", "2s",
		"-unsafe-logging", "-debug",
	}
	p, err := testbed.StartProcess(testbed.ProcessConfig{
		Name: "page-server", NS: c.Net.Server, Path: tools.serve, LogDir: c.Cfg.Dir,
		Args: append(args, extra...),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.track(p)
	if err := waitListening(context.Background(), c.Net.Server, netip.AddrPortFrom(testbed.ServerIP, PagePort).String(), p); err != nil {
		t.Fatalf("page server: %v\n%s", err, testbed.Tail(p.StderrPath, 10))
	}
}

// startProbe runs the NAT probe service in the server namespace.
func startProbe(t *testing.T, tools *browserTools, c *Chain) {
	t.Helper()
	addr := netip.AddrPortFrom(testbed.ServerIP, ProbePort).String()
	p, err := testbed.StartProcess(testbed.ProcessConfig{
		Name: "snowfall-probetest", NS: c.Net.Server, Path: tools.probetest, LogDir: c.Cfg.Dir,
		Args: []string{"-addr", addr, "-disable-tls", "-stun", c.STUN.URL(), "-unsafe-logging", "-verbose"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.track(p)
	if err := waitListening(context.Background(), c.Net.Server, addr, p); err != nil {
		t.Fatalf("probe: %v\n%s", err, testbed.Tail(p.StderrPath, 10))
	}
}

// startBrowserChain builds the server side of a chain (broker, bridge,
// target, STUN) and a namespace for the browser, without a proxy or a
// client: Start's proxies are programs, and the browser is not one.
func startBrowserChain(ctx context.Context, t *testing.T) (*Chain, *testbed.Namespace) {
	t.Helper()
	c := &Chain{Cfg: Config{Dir: artifacts(t), Bins: bins, Logf: t.Logf, Client: Debian}}
	t.Cleanup(c.Close)
	var err error
	if c.Fingerprint, err = randomFingerprint(); err != nil {
		t.Fatal(err)
	}
	if c.Net, err = testbed.NewNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.Net.Close() })
	if c.Cli, err = c.Net.AddHost(ctx, "cli", testbed.ClientIP); err != nil {
		t.Fatal(err)
	}
	brw, err := c.Net.AddHost(ctx, "brw", testbed.ProxyIP)
	if err != nil {
		t.Fatal(err)
	}
	srv := c.Net.Server
	c.STUN, err = testbed.StartSTUNServer(srv,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	if err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.STUN.Close() })
	c.Target, err = testbed.StartTarget(srv, netip.AddrPortFrom(testbed.ServerIP, TargetPort).String())
	if err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.Target.Close() })
	if err := c.startBridge(ctx, c.Target.Addr); err != nil {
		t.Fatal(err)
	}
	if err := c.startBroker(ctx); err != nil {
		t.Fatal(err)
	}
	return c, brw
}

// startChromium runs a headless Chromium inside ns, driven over a pipe,
// and returns a browser tab's context. Its console goes to console.log in
// dir and its own output to chromium.log.
func startChromium(ctx context.Context, t *testing.T, ns *testbed.Namespace, dir string, width, height int) context.Context {
	t.Helper()
	chromium, err := testbed.SystemBinary("chromium")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		// Screenshots show the page at the emulated width, not less a
		// scrollbar's width cut off at the right.
		chromedp.Flag("hide-scrollbars", true),
		chromedp.CombinedOutput(logFile),
		// Run it in the namespace: ip netns exec execs Chromium in place,
		// keeping the pipe's descriptors.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{ip, "netns", "exec", ns.Name, chromium}, cmd.Args[1:]...)
			cmd.Path = ip
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		}),
	}
	for _, f := range testbed.ChromiumFlags {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)

	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	var cmu sync.Mutex
	t.Cleanup(func() { cmu.Lock(); console.Close(); cmu.Unlock() })
	listen := func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					var s string
					if json.Unmarshal(a.Value, &s) == nil {
						parts = append(parts, s)
						continue
					}
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			cmu.Lock()
			fmt.Fprintf(console, "%s %s: %s\n", time.Now().Format("15:04:05.000"), ev.Type, strings.Join(parts, " "))
			cmu.Unlock()
		case *runtime.EventExceptionThrown:
			cmu.Lock()
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			fmt.Fprintf(console, "%s exception: %s (%s:%d)\n", time.Now().Format("15:04:05.000"), msg, d.URL, d.LineNumber)
			cmu.Unlock()
		}
	}
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	t.Cleanup(cancel)
	// Start the browser now, so that a failure shows here.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium in %s: %v\n%s", ns.Name, err, testbed.Tail(logFile.Name(), 20))
	}
	return bctx
}

// pageState reads the proxy's state from the page.
func pageState(bctx context.Context) (browserState, error) {
	var s browserState
	js, err := chromedp.Run(bctx, chromedp.Evaluate[string](`window.snowfall ? snowfall.state() : ""`))
	if err != nil {
		return s, err
	}
	if js == "" {
		return s, errors.New("the proxy is not loaded")
	}
	err = json.Unmarshal([]byte(js), &s)
	return s, err
}

// waitState polls the page until ok accepts its state.
func waitState(ctx, bctx context.Context, t *testing.T, what string, timeout time.Duration, ok func(browserState) bool) browserState {
	t.Helper()
	return waitStateEvery(ctx, bctx, t, what, timeout, 250*time.Millisecond, ok)
}

// waitStateEvery is waitState reading the state every interval.
func waitStateEvery(ctx, bctx context.Context, t *testing.T, what string, timeout, interval time.Duration, ok func(browserState) bool) browserState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var s browserState
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err = pageState(bctx)
		if err == nil && ok(s) {
			return s
		}
		time.Sleep(interval)
	}
	t.Fatalf("waiting for %s: last state %+v (err %v)", what, s, err)
	return s
}

// screenshot saves the page as a PNG in dir.
func screenshot(t *testing.T, bctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", p)
}

// pageText is the visible text of the element with id.
func pageText(t *testing.T, bctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById(`+jsString(id)+`).innerText`))
	if err != nil {
		t.Fatalf("reading #%s: %v", id, err)
	}
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// transferBoth moves browserTransfer bytes each way through the chain's
// client, checking every byte.
func transferBoth(ctx context.Context, t *testing.T, c *Chain, seed uint64) {
	t.Helper()
	down, err := testbed.Download(ctx, dialChain(ctx, t, c), browserTransfer, seed)
	if err != nil || !down.OK() {
		t.Fatalf("download: %v (%v)\nclient log tail:\n%s", err, down, testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dialChain(ctx, t, c), browserTransfer, seed+1)
	if err != nil || !up.OK() {
		t.Fatalf("upload: %v (%v)\nclient log tail:\n%s", err, up, testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", up)
}

// TestBrowserProxyServesClients opens the browser proxy's page in a
// headless Chromium inside its own namespace, switches it on, and has Tor's
// client (Debian's snowflake-client) and then ours reach the bridge
// through it, checking every byte both ways. The page polls our broker,
// measures its NAT type against our probe, and relays to our bridge.
func TestBrowserProxyServesClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	tools := buildBrowserTools(ctx, t)
	c, brw := startBrowserChain(ctx, t)
	startProbe(t, tools, c)
	startPageServer(t, tools, c)
	dir := c.Cfg.Dir
	bctx := startChromium(ctx, t, brw, dir, 1000, 900)

	// Opt-in: the page starts switched off and loads no proxy.
	err := chromedp.Do(bctx,
		chromedp.Navigate(pageURL),
		chromedp.WaitEnabled(chromedp.ID("toggle")),
	)
	if err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	if got := pageText(t, bctx, "status"); !strings.HasPrefix(got, "Off") {
		t.Errorf("status before switching on = %q, want Off…", got)
	}
	switchedOn := time.Now()
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("toggle"))); err != nil {
		t.Fatal(err)
	}
	s := waitStateEvery(ctx, bctx, t, "the proxy to poll", 90*time.Second, 10*time.Millisecond, func(s browserState) bool {
		return s.Polls > 0
	})
	// Reported, not asserted: it depends on this machine (make wasm's
	// size budget is the guard).
	t.Logf("switch on to first poll: %v", time.Since(switchedOn).Round(10*time.Millisecond))
	s = waitState(ctx, bctx, t, "the proxy to wait for clients", 90*time.Second, func(s browserState) bool {
		return s.Phase == "waiting" && s.Polls > 0
	})
	t.Logf("page state after switching on: %+v", s)
	if s.NAT != "unrestricted" {
		// Nothing stands between the browser and the probe.
		t.Errorf("NAT type = %q, want unrestricted from the probe", s.NAT)
	}
	if s.ProxyType != "badge" {
		t.Errorf("proxy type = %q, want badge", s.ProxyType)
	}

	// Tor's client.
	if err := c.startClient(ctx); err != nil {
		t.Fatal(err)
	}
	transferBoth(ctx, t, c, 11)
	s = waitState(ctx, bctx, t, "the counters", 30*time.Second, func(s browserState) bool {
		return s.Helped24h >= 1 && s.BytesToClients >= browserTransfer && s.BytesFromClients >= browserTransfer
	})
	// While a connection lasts, the page shows it and its bytes (the
	// core's events reach the page as they happen, not when it ends): an
	// echo stream is held open while the page is read.
	echoConn := dialChain(ctx, t, c)
	echo, err := startEcho(echoConn, 12)
	if err == nil {
		err = echo.round(ctx, 500_000)
	}
	if err != nil {
		t.Fatalf("echo through the browser: %v", err)
	}
	live := waitState(ctx, bctx, t, "the counters of a running connection", 30*time.Second, func(x browserState) bool {
		return x.Clients >= 1 && x.Phase == "serving" &&
			x.BytesToClients >= s.BytesToClients+500_000 && x.BytesFromClients >= s.BytesFromClients+500_000
	})
	t.Logf("page state while a connection runs: %+v", live)
	if err := echo.round(ctx, 1000); err != nil {
		t.Errorf("the echo stream ended while the page was read: %v", err)
	}
	echoConn.Close()
	t.Logf("page state after Tor's client: %+v", s)
	screenshot(t, bctx, dir, "page-serving.png")

	// Ours.
	c.Client.Stop(5 * time.Second)
	c.Cfg.Client = Snowfall
	if err := c.startClient(ctx); err != nil {
		t.Fatal(err)
	}
	transferBoth(ctx, t, c, 21)
	s = waitState(ctx, bctx, t, "the counters", 30*time.Second, func(s browserState) bool {
		return s.Helped24h >= 2 && s.BytesToClients >= 2*browserTransfer && s.BytesFromClients >= 2*browserTransfer
	})
	t.Logf("page state after our client: %+v", s)

	// What the volunteer sees, in words and at a phone's width.
	if got := pageText(t, bctx, "helped24h"); got == "0" || got == "" {
		t.Errorf("page shows %q people helped in 24 h", got)
	}
	if got := pageText(t, bctx, "nat"); got != "Unrestricted" {
		t.Errorf("page shows NAT %q", got)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(375, 812)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, dir, "page-phone.png")
	if fits, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`)); err != nil || !fits {
		t.Errorf("the page scrolls sideways at 375 px (%v)", err)
	}

	// The target got exactly what was sent, through the browser.
	var sent, received int
	for _, r := range c.Target.Results() {
		switch {
		case r.Command == "SEND" && r.OK && r.Bytes == browserTransfer:
			sent++
		case r.Command == "RECV" && r.OK && r.Bytes == browserTransfer:
			received++
		}
	}
	if sent != 2 || received != 2 {
		t.Errorf("target results %+v", c.Target.Results())
	}

	// Switching off stops the proxy and is remembered.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("toggle"))); err != nil {
		t.Fatal(err)
	}
	waitState(ctx, bctx, t, "the proxy to stop", 30*time.Second, func(s browserState) bool { return !s.Running })
	if stored, err := chromedp.Run(bctx, chromedp.Evaluate[string](`localStorage.getItem("snowfall.enabled")`)); err != nil || stored != "0" {
		t.Errorf("stored switch = %q (%v), want 0", stored, err)
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}

// withoutWebRTC makes the tab's next documents look like a browser without
// WebRTC.
func withoutWebRTC() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;",
		})
		return err
	})
}

// isVisible reports whether the element with id is shown.
func isVisible(t *testing.T, bctx context.Context, id string) bool {
	t.Helper()
	v, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const e = document.getElementById(`+jsString(id)+`); return !!e && !e.hidden && e.offsetParent !== null; })()`))
	if err != nil {
		t.Fatalf("checking #%s: %v", id, err)
	}
	return v
}

// waitText polls until the element with id shows text containing want.
func waitText(ctx context.Context, t *testing.T, bctx context.Context, id, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if got = pageText(t, bctx, id); strings.Contains(got, want) && isVisible(t, bctx, id) {
			return got
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("#%s shows %q, want it to contain %q", id, got, want)
	return got
}

// TestBrowserPageMessages checks what a volunteer sees when things go
// wrong: a browser without WebRTC, a bridge that cannot be reached, then
// (after Retry, with the bridge up) a broker that cannot be reached; and
// the embeddable badge.
func TestBrowserPageMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tools := buildBrowserTools(ctx, t)
	dir := artifacts(t)
	c := &Chain{Cfg: Config{Dir: dir, Bins: bins, Logf: t.Logf}}
	t.Cleanup(c.Close)
	var err error
	if c.Net, err = testbed.NewNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.Net.Close() })
	brw, err := c.Net.AddHost(ctx, "brw", testbed.ProxyIP)
	if err != nil {
		t.Fatal(err)
	}
	c.STUN, err = testbed.StartSTUNServer(c.Net.Server,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	if err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.STUN.Close() })
	// Nothing listens at the broker and the bridge yet.
	c.BrokerURL = "http://" + netip.AddrPortFrom(testbed.ServerIP, BrokerPort).String() + "/"
	c.RelayURL = "ws://" + netip.AddrPortFrom(testbed.ServerIP, BridgePort).String() + "/"
	startPageServer(t, tools, c)

	// The badge, as another site would embed it: off until switched on.
	bctx := startChromium(ctx, t, brw, dir, 360, 120)
	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL+"badge.html"), chromedp.WaitEnabled(chromedp.ID("toggle"))); err != nil {
		t.Fatal(err)
	}
	if got := pageText(t, bctx, "status"); !strings.HasPrefix(got, "Off") {
		t.Errorf("badge status %q, want Off…", got)
	}
	if loaded, _ := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!window.snowfall`)); loaded {
		t.Error("the badge loaded the proxy before being switched on")
	}
	screenshot(t, bctx, dir, "badge-off.png")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("toggle"))); err != nil {
		t.Fatal(err)
	}
	waitText(ctx, t, bctx, "error-text", "Tor bridge", 60*time.Second)
	screenshot(t, bctx, dir, "badge-error.png")
	if s, err := pageState(bctx); err != nil || s.ProxyType != "badge" || s.Polls != 0 {
		t.Errorf("badge state %+v (%v): want type badge and no poll while the bridge is unreachable", s, err)
	}

	// The page: the switch was remembered, so it starts by itself.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(375, 812), chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	got := waitText(ctx, t, bctx, "error-text", "Can't reach the Tor bridge", 60*time.Second)
	t.Logf("bridge down: %q", got)
	if !isVisible(t, bctx, "retry") {
		t.Error("no Retry button for an unreachable bridge")
	}
	screenshot(t, bctx, dir, "page-bridge-unreachable.png")

	// The bridge comes up; Retry finds it, and the broker is the next
	// problem.
	c.Target, err = testbed.StartTarget(c.Net.Server, netip.AddrPortFrom(testbed.ServerIP, TargetPort).String())
	if err != nil {
		t.Fatal(err)
	}
	c.onClose(func() { c.Target.Close() })
	if err := c.startBridge(ctx, c.Target.Addr); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("retry"))); err != nil {
		t.Fatal(err)
	}
	got = waitText(ctx, t, bctx, "error-text", "Can't reach the Snowflake broker", 60*time.Second)
	t.Logf("broker down: %q", got)
	if !isVisible(t, bctx, "retry") {
		t.Error("no Retry button for an unreachable broker")
	}
	s, err := pageState(bctx)
	if err != nil || s.Error == nil || s.Error.Kind != "broker" || s.Polls == 0 {
		t.Errorf("state %+v (%v): want a broker error after a poll", s, err)
	}
	screenshot(t, bctx, dir, "page-broker-unreachable.png")

	// A browser without WebRTC is told so and cannot switch on.
	nctx, ncancel := chromedp.NewContext(bctx)
	defer ncancel()
	if err := chromedp.Do(nctx, withoutWebRTC(), chromedp.EmulateViewport(375, 812), chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	got = waitText(ctx, t, nctx, "error-text", "doesn't support WebRTC", 30*time.Second)
	t.Logf("no WebRTC: %q", got)
	if disabled, err := chromedp.Run(nctx, chromedp.Evaluate[bool](`document.getElementById("toggle").disabled`)); err != nil || !disabled {
		t.Errorf("switch enabled without WebRTC (%v)", err)
	}
	if isVisible(t, nctx, "retry") {
		t.Error("Retry offered without WebRTC")
	}
	screenshot(t, nctx, dir, "page-no-webrtc.png")
}
