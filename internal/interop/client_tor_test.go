//go:build integration

package interop

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// TestTorWithSnowfallClient: Debian's tor runs snowfall-client from its
// ClientTransportPlugin line, with a Bridge line like Tor Browser's, and
// reaches a bridge (tor behind snowfall-server) through Debian's
// snowflake-proxy and Snowfall's broker, in a private Tor network. It
// bootstraps to 100 % and carries 50 MB each way through bridge, relay and
// exit to the target, every byte checked.
func TestTorWithSnowfallClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := artifacts(t)
	server, err := bins.Path(ctx, "snowfall-server")
	if err != nil {
		t.Fatal(err)
	}
	sfc, err := bins.Path(ctx, "snowfall-client")
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

	ptLog := dir + "/torclient/snowfall-client.log"
	client, err := NewTorClient(dir, c.Cli, c, sfc, "-log", ptLog, "-unsafe-logging")
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
	wctx, wcancel := context.WithTimeout(ctx, 4*time.Minute)
	defer wcancel()
	if err := client.WaitBootstrap(wctx, 100); err != nil {
		t.Fatalf("%v\ntor client log tail:\n%s\nsnowfall-client log tail:\n%s\nbridge log tail:\n%s", err,
			testbed.Tail(client.LogPath, 20), testbed.Tail(ptLog, 20), testbed.Tail(bridge.LogPath, 20))
	}
	t.Logf("tor client bootstrapped to 100%% %v after the network started", time.Since(start).Round(time.Second))

	transferThroughTor(ctx, t, c, client, bridge, socks, 41)

	// Tor shows the PT's LOG events in its own log.
	torLog, err := os.ReadFile(client.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"offer created", "connected"} {
		if !strings.Contains(string(torLog), want) {
			t.Errorf("tor's log lacks the PT event %q", want)
		}
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
