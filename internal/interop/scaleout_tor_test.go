//go:build integration

package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Ports of the scale-out bridge in the server namespace: instance i
// (0, 1) has ORPort 9001+10i, ExtORPort 9002+10i and its tap 9003+10i.
const scaleOutHAProxyPort = 9020

// okaySessions counts the ExtORPort handshakes tor accepted (health checks
// also pass through the taps, and fail).
func okaySessions(tap *testbed.ExtORTap) int {
	n := 0
	for _, s := range tap.Sessions() {
		if s.Reply == "OKAY" {
			n++
		}
	}
	return n
}

// TestScaleOutTwoTorInstances is Tor's production layout for a busy
// Snowflake bridge: one snowfall-server in front of HAProxy in front of two
// tor instances that share identity keys, each with its own ExtORPort
// cookie. In a private Tor network two tor clients bootstrap through our
// broker and proxies (Debian's snowflake-client as their PT), their
// connections land on both instances, and after one instance is killed new
// circuits through the bridge still succeed.
func TestScaleOutTwoTorInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	dir := artifacts(t)
	server, err := bins.Path(ctx, "snowfall-server")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := testbed.NewTorNetwork(ctx, dir, testbed.ServerIP, 5000, 3, 1)
	if err != nil {
		t.Fatal(err)
	}

	var inst [2]*testbed.TorNode
	var fps [2]string
	for i := range inst {
		n, err := testbed.NewTorNode(dir, fmt.Sprintf("bridge%d", i+1), nil, "info")
		if err != nil {
			t.Fatal(err)
		}
		ip := testbed.ServerIP.String()
		n.Torrc.Set("Nickname", "snowfallbridge")
		n.Torrc.Set("Address", ip)
		n.Torrc.Set("BridgeRelay", "1")
		n.Torrc.Set("BridgeDistribution", "none")
		n.Torrc.Set("ORPort", fmt.Sprintf("%s:%d", ip, 9001+10*i))
		n.Torrc.Set("ExtORPort", fmt.Sprintf("127.0.0.1:%d", 9002+10*i))
		n.Torrc.Set("PublishServerDescriptor", "0")
		n.Torrc.Set("AssumeReachable", "1")
		n.Torrc.Set("ExitRelay", "0")
		n.Torrc.Set("ExitPolicy", "reject *:*")
		n.Torrc.Set("SocksPort", "0")
		tn.Configure(&n.Torrc)
		if i == 1 {
			// The second instance takes the first one's identity.
			if out, err := exec.Command("cp", "-a", filepath.Join(inst[0].DataDir, "keys"), n.DataDir).CombinedOutput(); err != nil {
				t.Fatalf("copying keys: %v: %s", err, out)
			}
		}
		if fps[i], err = n.Fingerprint(ctx); err != nil {
			t.Fatal(err)
		}
		inst[i] = n
	}
	if fps[0] != fps[1] {
		t.Fatalf("instances have different identities: %s, %s", fps[0], fps[1])
	}

	c := startChain(ctx, t, Config{Dir: dir, ExternalBridge: true, NoClient: true, Fingerprint: fps[0], Proxies: 2})
	ns := c.Net.Server
	start := time.Now()
	t.Cleanup(tn.Stop)
	if err := tn.Start(ctx, ns); err != nil {
		t.Fatal(err)
	}
	var taps [2]*testbed.ExtORTap
	var cookies [2]string
	for i, n := range inst {
		n.NS = ns
		t.Cleanup(n.Stop)
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cookies[i] = filepath.Join(n.DataDir, "extended_orport_auth_cookie")
		deadline := time.Now().Add(60 * time.Second)
		for {
			if st, err := os.Stat(cookies[i]); err == nil && st.Size() == 64 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s wrote no ExtORPort cookie; log tail:\n%s", n.Name, testbed.Tail(n.LogPath, 15))
			}
			time.Sleep(200 * time.Millisecond)
		}
		taps[i], err = testbed.StartExtORTap(ns, fmt.Sprintf("127.0.0.1:%d", 9003+10*i), fmt.Sprintf("127.0.0.1:%d", 9002+10*i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { taps[i].Close() })
	}
	lb := fmt.Sprintf("127.0.0.1:%d", scaleOutHAProxyPort)
	startHAProxy(ctx, t, ns, dir, lb, "127.0.0.1:9003", "127.0.0.1:9013")
	srv, err := testbed.StartPTServer(ctx, testbed.PTServerConfig{
		Name: "snowfall-server", Path: server, NS: ns, Transport: "snowflake",
		Args:           []string{"--disable-tls", "--unsafe-logging", "--auth-cookie-file", cookies[1]},
		LogDir:         dir,
		BindAddr:       netip.AddrPortFrom(testbed.ServerIP, BridgePort).String(),
		ORPort:         fmt.Sprintf("%s:9001", testbed.ServerIP),
		ExtORPort:      lb,
		AuthCookieFile: cookies[0],
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(5 * time.Second) })

	sfc, err := testbed.SystemBinary("snowflake-client")
	if err != nil {
		t.Fatal(err)
	}
	var clients [2]*testbed.TorNode
	var socks [2]string
	for i := range clients {
		ptLog := fmt.Sprintf("%s/snowflake-client-%d.log", dir, i+1)
		cl, err := NewTorClient(dir, c.Cli, c, sfc, "-log", ptLog, "-unsafe-logging")
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// NewTorClient names its node "torclient"; give the second
			// its own directory.
			n, err := testbed.NewTorNode(dir, "torclient2", c.Cli, "notice")
			if err != nil {
				t.Fatal(err)
			}
			n.Torrc = append(n.Torrc, cl.Torrc[len(n.Torrc):]...)
			cl = n
		}
		tn.Configure(&cl.Torrc)
		socks[i] = fmt.Sprintf("127.0.0.1:%d", 9050+i)
		cl.Torrc.Set("SocksPort", socks[i])
		t.Cleanup(cl.Stop)
		if err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		clients[i] = cl
	}
	for i, cl := range clients {
		wctx, wcancel := context.WithTimeout(ctx, 4*time.Minute)
		err := cl.WaitBootstrap(wctx, 100)
		wcancel()
		if err != nil {
			t.Fatalf("client %d: %v\nclient log tail:\n%s\nbridge1 log tail:\n%s\nsnowfall-server stderr:\n%s", i+1, err,
				testbed.Tail(cl.LogPath, 20), testbed.Tail(inst[0].LogPath, 15), testbed.Tail(srv.StderrPath, 15))
		}
	}
	t.Logf("both tor clients bootstrapped %v after the network started", time.Since(start).Round(time.Second))

	target := netip.MustParseAddrPort(c.Target.Addr)
	// circuit opens a new stream through client i's tor and moves 256 KiB
	// down it; a failure is retried (tor may still be noticing a dead
	// channel) until the deadline.
	circuit := func(i int, within time.Duration, seed uint64) error {
		deadline := time.Now().Add(within)
		var lastErr error
		for time.Now().Before(deadline) {
			dctx, dcancel := context.WithTimeout(ctx, time.Minute)
			conn, err := testbed.DialSOCKS5(dctx, c.Cli, socks[i], target, nil)
			if err == nil {
				_, err = testbed.Download(dctx, conn, 256<<10, seed)
				conn.Close()
			}
			dcancel()
			if err == nil {
				return nil
			}
			lastErr = err
			time.Sleep(2 * time.Second)
		}
		return lastErr
	}
	for i := range clients {
		if err := circuit(i, time.Minute, uint64(10+i)); err != nil {
			t.Fatalf("client %d before the kill: %v", i+1, err)
		}
	}
	before := [2]int{okaySessions(taps[0]), okaySessions(taps[1])}
	t.Logf("ExtORPort sessions accepted: %d by instance 1, %d by instance 2", before[0], before[1])
	if before[0] == 0 || before[1] == 0 {
		t.Errorf("connections did not spread over both instances: %v", before)
	}

	// The instance dies with its tap, which HAProxy health-checks.
	inst[0].Stop()
	taps[0].Close()
	t.Log("instance 1 killed")
	for i := range clients {
		if err := circuit(i, 3*time.Minute, uint64(20+i)); err != nil {
			t.Fatalf("client %d after instance 1 died: %v\nclient log tail:\n%s", i+1, err, testbed.Tail(clients[i].LogPath, 20))
		}
	}
	after := okaySessions(taps[1])
	t.Logf("instance 2 accepted %d sessions in all", after)
	if after <= before[1] {
		t.Error("no new connection reached instance 2 after instance 1 died")
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
