//go:build integration

package interop

import (
	"context"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// censoredDialTimeout bounds a dial that the censor is expected to stop:
// long enough for a rendezvous, a match and DTLS retransmissions.
const censoredDialTimeout = 45 * time.Second

// TestCensorBlocksPionProxy puts the 2021-2024 style DPI rule (pion's
// default DTLS ClientHello matched by offset) on the client's input path
// and shows that Tor's 2.5.1 proxy can then no longer serve our client; the
// rule is what stops it: the rule counts the dropped hellos, and without it
// the same chain carries hash-checked bytes.
func TestCensorBlocksPionProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Debian})
	censor, err := testbed.InstallPionDTLSCensor(ctx, c.Cli)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, censoredDialTimeout)
	conn, err := c.Dial(dctx)
	dcancel()
	if err == nil {
		_, derr := testbed.Download(ctx, conn, 100_000, 21)
		if derr == nil {
			t.Fatal("the censored chain carried data")
		}
		t.Logf("dial passed, transfer failed: %v", derr)
	} else {
		t.Logf("censored dial: %v", err)
	}
	dropped, err := censor.Dropped(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Fatal("the censor dropped nothing: the chain failed for another reason")
	}
	t.Logf("censor dropped %d ClientHello datagrams from Tor's 2.5.1 proxy", dropped)

	if err := censor.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	down, err := testbed.Download(ctx, dialChain(ctx, t, c), 2_000_000, 22)
	if err != nil || !down.OK() {
		t.Fatalf("without the censor: %v (%v)\n%v", err, down, c.CheckAlive())
	}
}
