//go:build integration

package interop

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// matrixTransferSize is what each direction carries in an interop case:
// enough for many KCP windows and smux frames, small enough to run every
// combination in make test.
const matrixTransferSize = 4 << 20

// interopCase is one chain made of a mix of implementations.
type interopCase struct {
	Client, Proxy, Broker, Bridge string
}

func (ic interopCase) String() string {
	return fmt.Sprintf("client=%s,proxy=%s,broker=%s,bridge=%s", ic.Client, ic.Proxy, ic.Broker, ic.Bridge)
}

// interopCases are the combinations run against Tor's programs. Together
// with TestSnowfallClientThroughOurChain (our client, Debian's 2.5.1 proxy)
// and TestOurProxyServesDebianClient (Debian's 2.5.1 client, our proxy),
// which carry more bytes and check logs, they hold the matrix of issue 8:
// each of our client and proxy against each of Tor's clients and proxies.
// The mixed chains then put, for every pair of roles that talk to each
// other (client-broker, proxy-broker, client-proxy, proxy-bridge,
// client-bridge), ours on one side and Tor's current one on the other, in
// both directions.
var interopCases = []interopCase{
	// Our client with Tor's current proxy, our proxy with Tor's current
	// client; our broker and bridge.
	{Snowfall, Upstream, Snowfall, Snowfall},
	{Upstream, Snowfall, Snowfall, Snowfall},
	// Our client through Tor's broker, proxy and bridge (what the README
	// claims), and our client and proxy with Tor's broker and bridge.
	{Snowfall, Upstream, Upstream, Upstream},
	{Snowfall, Snowfall, Upstream, Upstream},
	// Our programs alone among Tor's: broker and bridge, broker, bridge,
	// proxy.
	{Upstream, Upstream, Snowfall, Snowfall},
	{Upstream, Upstream, Snowfall, Upstream},
	{Upstream, Upstream, Upstream, Snowfall},
	{Upstream, Snowfall, Upstream, Upstream},
}

// TestInteropMatrix runs every interopCase: a fresh chain each, a few MB
// each way between the client's SOCKS port and the bridge's ORPort, every
// byte checked by hash, and the programs' versions checked so that a case
// cannot pass by running something else than it names.
func TestInteropMatrix(t *testing.T) {
	for _, ic := range interopCases {
		t.Run(ic.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := startChain(ctx, t, Config{Client: ic.Client, Proxy: ic.Proxy, Broker: ic.Broker, Bridge: ic.Bridge})
			checkVersions(t, c)

			down, up := transferConcurrently(ctx, t, c, matrixTransferSize, 61)
			t.Logf("%v; %v", down, up)

			var sent, received bool
			for _, r := range c.Target.Results() {
				sent = sent || (r.Command == "SEND" && r.OK && r.Bytes == matrixTransferSize)
				received = received || (r.Command == "RECV" && r.OK && r.Bytes == matrixTransferSize)
			}
			if !sent || !received {
				t.Errorf("target results %+v", c.Target.Results())
			}
			if err := c.CheckAlive(); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkVersions fails the test unless each role that reports a version
// runs the implementation the chain was asked for.
func checkVersions(t *testing.T, c *Chain) {
	t.Helper()
	want := map[string]string{
		Debian:   "2.5.1",
		Snowfall: "snowfall",
	}
	if c.Cfg.Tor != nil {
		want[Upstream] = strings.TrimPrefix(c.Cfg.Tor.Version, "v")
	}
	// Tor's broker reports the module version it was built from (it has
	// no -version flag), so this checks that Start chose it.
	impl := map[string]string{"client": c.Cfg.Client, "proxy0": c.Cfg.Proxy, "broker": c.Cfg.Broker, "bridge": c.Cfg.Bridge}
	for _, comp := range c.Components {
		i, ok := impl[comp.Role]
		if !ok {
			continue
		}
		if !strings.Contains(comp.Version, want[i]) {
			t.Errorf("%s is %q (%s), want %s %s", comp.Role, comp.Version, comp.Program, i, want[i])
		}
	}
}

// transferConcurrently downloads and uploads n bytes at the same time, on two
// streams through the chain (so the two rendezvous Tor's clients make
// overlap), and fails the test unless both arrive intact.
func transferConcurrently(ctx context.Context, t *testing.T, c *Chain, n int64, seed uint64) (down, up testbed.Transfer) {
	t.Helper()
	var wg sync.WaitGroup
	var derr, uerr error
	wg.Go(func() {
		var conn net.Conn
		if conn, derr = dialRetry(ctx, c, t.Logf); derr == nil {
			down, derr = testbed.Download(ctx, conn, n, seed)
		}
	})
	wg.Go(func() {
		var conn net.Conn
		if conn, uerr = dialRetry(ctx, c, t.Logf); uerr == nil {
			up, uerr = testbed.Upload(ctx, conn, n, seed+1)
		}
	})
	wg.Wait()
	if derr != nil || uerr != nil || !down.OK() || !up.OK() {
		t.Fatalf("download: %v (%v)\nupload: %v (%v)\n%v\nclient log tail:\n%s",
			derr, down, uerr, up, c.CheckAlive(), testbed.Tail(c.ClientLog, 20))
	}
	return down, up
}
