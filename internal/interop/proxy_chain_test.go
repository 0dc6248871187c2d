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

// proxyTransferSize is how much each direction carries through our proxy.
const proxyTransferSize = 20_000_000

// TestOurProxyServesDebianClient runs Snowfall's proxy between Tor's 2.5.1
// client (Debian's snowflake-client) and Snowfall's broker and bridge, and
// moves 20 MB each way, checking every byte by hash.
func TestOurProxyServesDebianClient(t *testing.T) {
	testOurProxyServes(t, Debian)
}

// TestOurProxyServesOurClient is the same with Snowfall's own client.
func TestOurProxyServesOurClient(t *testing.T) {
	testOurProxyServes(t, Snowfall)
}

func testOurProxyServes(t *testing.T, client string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: client, Proxy: Snowfall})

	down, err := testbed.Download(ctx, dialChain(ctx, t, c), proxyTransferSize, 11)
	if err != nil {
		t.Fatalf("download: %v (%v)\n%v", err, down, c.CheckAlive())
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dialChain(ctx, t, c), proxyTransferSize, 12)
	if err != nil {
		t.Fatalf("upload: %v (%v)\n%v", err, up, c.CheckAlive())
	}
	t.Logf("%v", up)
	if !down.OK() || !up.OK() {
		t.Fatalf("hash mismatch: %v / %v", down, up)
	}
	if err := c.CheckAlive(); err != nil {
		t.Fatal(err)
	}

	// Our proxy's log tells what it did, in Tor's words where Tor has them.
	log := proxyLog(t, c, 0)
	// Offline the default probe host does not resolve, so the NAT type
	// stays unknown and the log says why.
	for _, want := range []string{"Proxy starting", "NAT probe failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("proxy log lacks %q", want)
		}
	}
	for _, bad := range []string{"relay refused by policy", "panic", "cannot reach relay"} {
		if strings.Contains(log, bad) {
			t.Errorf("proxy log shows %q:\n%s", bad, log)
		}
	}
}

// proxyLog returns the i-th proxy's log file.
func proxyLog(t *testing.T, c *Chain, i int) string {
	t.Helper()
	for _, comp := range c.Components {
		if comp.Role == "proxy"+string(rune('0'+i)) && len(comp.Logs) > 0 {
			b, err := os.ReadFile(comp.Logs[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no proxy%d in the chain", i)
	return ""
}
