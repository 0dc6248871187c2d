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

// transferSize is how much each direction carries in the throughput tests.
const transferSize = 50_000_000

// TestDebianClientThroughOurChain runs Tor's 2.5.1 client and proxy (from
// Debian) through Snowfall's broker and bridge, and moves 50 MB each way
// between the client's SOCKS port and the bridge's ORPort, checking every
// byte.
func TestDebianClientThroughOurChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Debian, Proxy: Debian})

	down, err := testbed.Download(ctx, dialChain(ctx, t, c), transferSize, 1)
	if err != nil {
		t.Fatalf("download: %v (%v)\n%v", err, down, c.CheckAlive())
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dialChain(ctx, t, c), transferSize, 2)
	if err != nil {
		t.Fatalf("upload: %v (%v)\n%v", err, up, c.CheckAlive())
	}
	t.Logf("%v", up)
	t.Logf("throughput: down %.2f MB/s, up %.2f MB/s", down.MBps(), up.MBps())

	// The target saw exactly the two transfers, both complete.
	var sent, received bool
	for _, r := range c.Target.Results() {
		switch {
		case r.Command == "SEND" && r.OK && r.Bytes == transferSize:
			sent = true
		case r.Command == "RECV" && r.OK && r.Bytes == transferSize:
			received = true
		}
	}
	if !sent || !received {
		t.Errorf("target results %+v", c.Target.Results())
	}

	// The client learned its NAT type from our two-address STUN server;
	// without that no 2.5.1-style broker would have matched it.
	log, err := os.ReadFile(c.ClientLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "NAT Type: unrestricted") {
		t.Errorf("client log does not show NAT Type: unrestricted")
	}
	if c.STUN.Requests() < 2 {
		t.Errorf("STUN server answered %d requests", c.STUN.Requests())
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
