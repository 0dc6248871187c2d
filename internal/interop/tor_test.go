//go:build integration

package interop

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// TestTorHandshakeThroughOurBridge puts a real tor bridge behind
// snowfall-server (Extended ORPort) and a real tor client behind Debian's
// snowflake-client, with our broker and Debian's proxy in between. Without a
// Tor network the client cannot get a consensus, but it must get through the
// bridge's TLS and link handshakes and ask it for directory documents; and
// the bridge must have been told, and have accepted, the transport name.
func TestTorHandshakeThroughOurBridge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	server, err := bins.Path(ctx, "snowfall-server")
	if err != nil {
		t.Fatal(err)
	}
	sfc, err := testbed.SystemBinary("snowflake-client")
	if err != nil {
		t.Fatal(err)
	}
	torHandshake(ctx, t, server, sfc, Config{})
}

// TestTorHandshakeThroughUpstreamBridge is the same with Tor's current
// server (2.14.1) as the bridge's transport, on tor's Extended ORPort, and
// ours everywhere else: tor runs snowfall-client, through our proxy and
// broker.
func TestTorHandshakeThroughUpstreamBridge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	server, err := upstream(t).Path("server")
	if err != nil {
		t.Fatal(err)
	}
	sfc, err := bins.Path(ctx, "snowfall-client")
	if err != nil {
		t.Fatal(err)
	}
	torHandshake(ctx, t, server, sfc, Config{Proxy: Snowfall})
}

// torHandshake runs a tor bridge with serverPT as its transport and a tor
// client with clientPT, through a chain made from cfg, and checks that the
// client gets through the bridge's handshakes (bootstrap 30 %) and that
// every Extended ORPort session named the transport and the client's
// address and was accepted.
func torHandshake(ctx context.Context, t *testing.T, serverPT, clientPT string, cfg Config) {
	t.Helper()
	dir := artifacts(t)
	bridge, err := NewTorBridge(ctx, dir, serverPT)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.ExternalBridge, cfg.NoClient, cfg.Fingerprint = dir, true, true, bridge.Fingerprint
	c := startChain(ctx, t, cfg)
	if err := bridge.Start(ctx, c.Net.Server); err != nil {
		bridge.Stop()
		t.Fatal(err)
	}
	t.Cleanup(bridge.Stop)
	t.Logf("tor bridge %s pid %d, ORPort %s:%d, transport %s", bridge.Fingerprint, bridge.Proc.PID(), testbed.ServerIP, BridgeORPort, serverPT)

	client, err := NewTorClient(dir, c.Cli, c, clientPT, "-log", dir+"/torclient/client-pt.log", "-unsafe-logging")
	if err != nil {
		t.Fatal(err)
	}
	client.Torrc.Set("SocksPort", "0")
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Stop)

	// 25% (requesting_status) means tor built a circuit to the bridge after
	// the TLS and link handshakes; 30% (loading_status) that the bridge
	// answered a directory request.
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	err = client.WaitBootstrap(wctx, 30)
	pct, tag := client.Bootstrap()
	t.Logf("tor client bootstrapped to %d%% (%s)", pct, tag)
	if err != nil {
		t.Fatalf("%v\nclient log tail:\n%s\nbridge log tail:\n%s\nserver PT log tail:\n%s", err,
			testbed.Tail(client.LogPath, 15), testbed.Tail(bridge.LogPath, 15), testbed.Tail(bridge.ServerLog, 15))
	}

	sessions := bridge.Tap.Sessions()
	if len(sessions) == 0 {
		t.Fatal("the server PT never connected to the Extended ORPort")
	}
	for i, s := range sessions {
		t.Logf("ExtORPort session %d: auth %v, TRANSPORT %q, USERADDR %q, reply %q, err %v", i, s.AuthOK, s.Transport, s.UserAddr, s.Reply, s.Err)
		if !s.AuthOK || s.Transport != "snowflake" || s.Reply != "OKAY" {
			t.Errorf("session %d: tor was not told, or did not accept, transport snowflake", i)
		}
		if ip, err := testbed.UserAddrIP(s.UserAddr); err != nil || ip != testbed.ClientIP {
			t.Errorf("session %d: USERADDR %q, want the client's address %s", i, s.UserAddr, testbed.ClientIP)
		}
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}

// TestTorClientThroughOurChain runs a private Tor network (three directory
// authorities that are also exits, one middle relay) with a bridge behind
// snowfall-server; a tor client reaches it only through Debian's
// snowflake-client, our broker and Debian's proxy, bootstraps, and carries
// 50 MB each way through bridge, relay and exit to the target.
func TestTorClientThroughOurChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
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
	bridge, err := NewTorBridge(ctx, dir, server)
	if err != nil {
		t.Fatal(err)
	}
	tn.Configure(&bridge.Torrc)
	c := startChain(ctx, t, Config{Dir: dir, ExternalBridge: true, NoClient: true, Fingerprint: bridge.Fingerprint})
	start := time.Now()
	t.Cleanup(tn.Stop)
	if err := tn.Start(ctx, c.Net.Server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bridge.Stop)
	if err := bridge.Start(ctx, c.Net.Server); err != nil {
		t.Fatal(err)
	}

	sfc, err := testbed.SystemBinary("snowflake-client")
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewTorClient(dir, c.Cli, c, sfc, "-log", dir+"/torclient/snowflake-client.log", "-unsafe-logging")
	if err != nil {
		t.Fatal(err)
	}
	tn.Configure(&client.Torrc)
	socks := "127.0.0.1:9050"
	client.Torrc.Set("SocksPort", socks)
	t.Cleanup(client.Stop)
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	if err := client.WaitBootstrap(wctx, 100); err != nil {
		t.Fatalf("%v\nclient log tail:\n%s\nbridge log tail:\n%s\nauth0 log tail:\n%s", err,
			testbed.Tail(client.LogPath, 20), testbed.Tail(bridge.LogPath, 20), testbed.Tail(tn.Authorities[0].LogPath, 20))
	}
	t.Logf("tor client bootstrapped to 100%% %v after the network started", time.Since(start).Round(time.Second))

	transferThroughTor(ctx, t, c, client, bridge, socks, 3)
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}

// transferThroughTor moves transferSize bytes each way between the target
// and the test through tor's SocksPort socks, hash-checked (seeds seed and
// seed+1), and checks that every ExtORPort session the bridge's tor saw was
// authenticated, named the snowflake transport and was accepted.
func transferThroughTor(ctx context.Context, t *testing.T, c *Chain, client *testbed.TorNode, bridge *TorBridge, socks string, seed uint64) {
	t.Helper()
	target := netip.MustParseAddrPort(c.Target.Addr)
	dial := func() net.Conn {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer dcancel()
		conn, err := testbed.DialSOCKS5(dctx, c.Cli, socks, target, nil)
		if err != nil {
			t.Fatalf("SOCKS through tor: %v\nclient log tail:\n%s", err, testbed.Tail(client.LogPath, 20))
		}
		return conn
	}
	down, err := testbed.Download(ctx, dial(), transferSize, seed)
	if err != nil {
		t.Fatalf("download: %v (%v)", err, down)
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dial(), transferSize, seed+1)
	if err != nil {
		t.Fatalf("upload: %v (%v)", err, up)
	}
	t.Logf("%v", up)
	t.Logf("through tor: down %.2f MB/s, up %.2f MB/s", down.MBps(), up.MBps())

	sessions := bridge.Tap.Sessions()
	if len(sessions) == 0 {
		t.Error("snowfall-server never connected to the Extended ORPort")
	}
	for i, s := range sessions {
		if !s.AuthOK || s.Transport != "snowflake" || s.Reply != "OKAY" {
			t.Errorf("ExtORPort session %d: %+v", i, s)
		}
	}
}
