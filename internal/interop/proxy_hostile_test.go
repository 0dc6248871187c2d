//go:build integration

package interop

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Black-box tests of the built snowfall-proxy against a hostile broker
// and client. Each runs the proxy in its own namespace of a fresh testbed
// network, a scripted broker and relays in the server namespace, and a
// pion client in the client namespace; all bounded in time.

// Ports of the scripted services in the server namespace.
const (
	hostileBrokerPort = 8100
	hostileRelayPort  = 8101
	hostileTargetPort = 8102
)

// hostileBed is the network, the STUN server and the started proxy.
type hostileBed struct {
	net      *testbed.Network
	cli, prx *testbed.Namespace
	proxyLog string
	proxy    *testbed.Process
	broker   *scriptedBroker
}

// scriptedBroker matches the first poll with offer and relay and answers
// "no match" to the others; the proxy's answer goes to answers.
type scriptedBroker struct {
	offer, relay string
	matched      atomic.Bool
	answers      chan string
}

func (b *scriptedBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 100000))
	switch r.URL.Path {
	case "/proxy":
		if !b.matched.CompareAndSwap(false, true) {
			w.Write([]byte(`{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`))
			return
		}
		resp := messages.ProxyPollResponse{Status: messages.StatusMatch, Offer: b.offer, NAT: "unrestricted", RelayURL: b.relay}
		w.Write(resp.AppendJSON(nil))
	case "/answer":
		req, err := messages.DecodeProxyAnswerRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.answers <- req.Answer
		w.Write([]byte(`{"Status":"success"}`))
	default:
		http.NotFound(w, r)
	}
}

// serveIn serves h on addr inside ns until the test ends.
func serveIn(t *testing.T, ns *testbed.Namespace, addr string, h http.Handler) {
	t.Helper()
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// hostileClient is a pion peer in the client namespace, on one socket.
type hostileClient struct {
	pc     *webrtc.PeerConnection
	dc     *webrtc.DataChannel
	opened chan struct{}
	echo   chan []byte
}

func newHostileClient(t *testing.T, ns *testbed.Namespace) *hostileClient {
	t.Helper()
	sock, err := ns.ListenPacket("udp4", netip.AddrPortFrom(testbed.ClientIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock})
	t.Cleanup(func() { mux.Close() })
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &hostileClient{pc: pc, opened: make(chan struct{}), echo: make(chan []byte, 16)}
	c.dc, err = pc.CreateDataChannel("snowflake", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.dc.OnOpen(func() { close(c.opened) })
	c.dc.OnMessage(func(m webrtc.DataChannelMessage) { c.echo <- m.Data })
	return c
}

// offer gathers and returns the client's offer (SDP text) with extra
// candidate lines added to its media section.
func (c *hostileClient) offer(t *testing.T, extra ...string) string {
	t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	sdp := c.pc.LocalDescription().SDP
	if len(extra) > 0 {
		lines := strings.Join(extra, "\r\n") + "\r\n"
		if i := strings.Index(sdp, "a=end-of-candidates"); i >= 0 {
			sdp = sdp[:i] + lines + sdp[i:]
		} else {
			sdp += lines
		}
	}
	return sdp
}

// newHostileBed starts the network and its client and proxy hosts.
func newHostileBed(ctx context.Context, t *testing.T) *hostileBed {
	t.Helper()
	n, err := testbed.NewNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	hb := &hostileBed{net: n, proxyLog: filepath.Join(artifacts(t), "proxy.log")}
	if hb.cli, err = n.AddHost(ctx, "cli", testbed.ClientIP); err != nil {
		t.Fatal(err)
	}
	if hb.prx, err = n.AddHost(ctx, "prx", testbed.ProxyIP); err != nil {
		t.Fatal(err)
	}
	return hb
}

// startProxy starts STUN, the scripted broker with its one match (the
// client's offer SDP and a relay URL) and our proxy.
func (hb *hostileBed) startProxy(ctx context.Context, t *testing.T, offerSDP, relay string, extra ...string) {
	t.Helper()
	stun, err := testbed.StartSTUNServer(hb.net.Server,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stun.Close() })
	offer, err := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeOffer, SDP: offerSDP})
	if err != nil {
		t.Fatal(err)
	}
	hb.broker = &scriptedBroker{offer: offer, relay: relay, answers: make(chan string, 1)}
	serveIn(t, hb.net.Server, netip.AddrPortFrom(testbed.ServerIP, hostileBrokerPort).String(), hb.broker)

	path, err := bins.Path(ctx, "snowfall-proxy")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"-broker", fmt.Sprintf("http://%s:%d/", testbed.ServerIP, hostileBrokerPort),
		"-relay", fmt.Sprintf("ws://%s:%d/", testbed.ServerIP, hostileRelayPort),
		"-allow-non-tls-relay", "-allowed-relay-hostname-pattern", relayPattern,
		"-stun", stun.URL(), "-nat-type-force-unrestricted", "-poll-interval", "2s",
		"-unsafe-logging", "-verbose", "-log", hb.proxyLog,
	}, extra...)
	hb.proxy, err = testbed.StartProcess(testbed.ProcessConfig{Name: "proxy", NS: hb.prx, Path: path, Args: args, LogDir: filepath.Dir(hb.proxyLog)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.proxy.Stop(5 * time.Second) })
}

// answer waits for the proxy's answer and applies it to c.
func (hb *hostileBed) answer(ctx context.Context, t *testing.T, c *hostileClient) {
	t.Helper()
	select {
	case a := <-hb.broker.answers:
		d, err := sdpwire.Decode(a)
		if err != nil {
			t.Fatalf("answer %q: %v", a, err)
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: d.SDP}); err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("no answer from the proxy: %v\n%s", ctx.Err(), testbed.Tail(hb.proxyLog, 20))
	}
}

// waitLog waits until the proxy's log contains s, failing at once if
// wrong reports true.
func (hb *hostileBed) waitLog(ctx context.Context, t *testing.T, s string, wrong func() bool) string {
	t.Helper()
	for ctx.Err() == nil {
		if b, _ := os.ReadFile(hb.proxyLog); strings.Contains(string(b), s) {
			return string(b)
		}
		if wrong != nil && wrong() {
			t.Fatalf("waiting for %q in the proxy log: gone wrong\n%s", s, testbed.Tail(hb.proxyLog, 20))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no %q in the proxy log:\n%s", s, testbed.Tail(hb.proxyLog, 20))
	return ""
}

// echoRelay is a WebSocket relay that echoes, in ns at addr; it counts
// its connections.
func echoRelay(t *testing.T, ns *testbed.Namespace, addr string) *atomic.Int64 {
	var n atomic.Int64
	serveIn(t, ns, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		c, err := websocketconn.Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}))
	return &n
}

// TestProxyIgnoresPrivateCandidates gives the built proxy a client whose
// offer, besides its real candidate, names loopback and private addresses
// of every candidate type, where the test listens in the proxy's own
// namespace. The proxy serves the client through its real candidate and
// sends nothing to the others.
func TestProxyIgnoresPrivateCandidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		trapMu sync.Mutex
		hits   = map[string]int{}
		traps  []net.PacketConn
	)
	hb := newHostileBed(ctx, t)
	client := newHostileClient(t, hb.cli)
	relays := echoRelay(t, hb.net.Server, netip.AddrPortFrom(testbed.ServerIP, hostileRelayPort).String())
	var extra []string
	for i, typ := range []string{"host", "srflx", "relay", "host"} {
		addr := "127.0.0.1"
		if i == 3 {
			addr = "127.0.0.53" // another loopback address: a local resolver's
		}
		pc, err := hb.prx.ListenPacket("udp4", addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		traps = append(traps, pc)
		port := pc.LocalAddr().(*net.UDPAddr).Port
		raddr := ""
		if typ != "host" {
			raddr = " raddr 0.0.0.0 rport 0"
		}
		// The highest priorities: a proxy that tries them tries them first.
		extra = append(extra, fmt.Sprintf("a=candidate:%d 1 udp %d %s %d typ %s%s", 9000+i, 2130706431-i, addr, port, typ, raddr))
		name := fmt.Sprintf("%s %s:%d", typ, addr, port)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				trapMu.Lock()
				hits[name]++
				trapMu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for _, pc := range traps {
			pc.Close()
		}
	})
	hb.startProxy(ctx, t, client.offer(t, extra...), fmt.Sprintf("ws://%s:%d/", testbed.ServerIP, hostileRelayPort))
	hb.answer(ctx, t, client)
	select {
	case <-client.opened:
	case <-ctx.Done():
		t.Fatalf("the client's channel did not open\n%s", testbed.Tail(hb.proxyLog, 20))
	}
	msg := []byte("through the proxy and back")
	if err := client.dc.Send(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-client.echo:
		if string(got) != string(msg) {
			t.Fatalf("echo %q", got)
		}
	case <-ctx.Done():
		t.Fatalf("no echo through the proxy\n%s", testbed.Tail(hb.proxyLog, 20))
	}
	if relays.Load() != 1 {
		t.Errorf("%d relay connections, want 1", relays.Load())
	}
	// What is asserted is an absence: ICE checks the pairs it keeps while
	// connecting, highest priority first, so by the echo they would have
	// gone out; two more seconds (pion paces checks every 200 ms) catch
	// stragglers. No event marks "no packet will come".
	time.Sleep(2 * time.Second)
	trapMu.Lock()
	defer trapMu.Unlock()
	for name, n := range hits {
		t.Errorf("the proxy sent %d packets to the client's candidate %s", n, name)
	}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second) // logged before the answer
	defer lcancel()
	hb.waitLog(lctx, t, "dropped the client's non-public candidates", nil)
}

// TestProxyRefusesRelayRedirect gives the built proxy a relay, allowed by
// its pattern, that redirects the WebSocket handshake to another server.
// The proxy must not follow: the other server is never reached, the
// client is closed, and the log says why.
func TestProxyRefusesRelayRedirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hb := newHostileBed(ctx, t)
	client := newHostileClient(t, hb.cli)
	target := echoRelay(t, hb.net.Server, netip.AddrPortFrom(testbed.ServerIP, hostileTargetPort).String())
	var redirects atomic.Int64
	to := fmt.Sprintf("http://%s:%d/", testbed.ServerIP, hostileTargetPort)
	serveIn(t, hb.net.Server, netip.AddrPortFrom(testbed.ServerIP, hostileRelayPort).String(),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			redirects.Add(1)
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
		}))
	hb.startProxy(ctx, t, client.offer(t), fmt.Sprintf("ws://%s:%d/", testbed.ServerIP, hostileRelayPort))
	hb.answer(ctx, t, client)
	select {
	case <-client.opened:
	case <-ctx.Done():
		t.Fatalf("the client's channel did not open\n%s", testbed.Tail(hb.proxyLog, 20))
	}
	log := hb.waitLog(ctx, t, "cannot reach relay", func() bool { return target.Load() > 0 })
	if !strings.Contains(log, "redirect") {
		t.Errorf("the log does not say the relay redirected:\n%s", testbed.Tail(hb.proxyLog, 10))
	}
	if redirects.Load() != 1 || target.Load() != 0 {
		t.Errorf("relay asked %d times, redirect target reached %d times; want 1 and 0", redirects.Load(), target.Load())
	}
	if ok, status := hb.proxy.ExitedUnexpectedly(); ok {
		t.Errorf("proxy exited: %s", status)
	}
}
