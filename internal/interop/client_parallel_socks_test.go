//go:build integration

package interop

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// parallelConns is how many SOCKS connections are opened at once.
const parallelConns = 10

// openBound is how long a SOCKS connection may take to open once the
// client's session is up.
const openBound = 5 * time.Second

// TestSnowfallClientParallelSOCKS opens ten SOCKS connections at once
// through snowfall-client and one proxy (Tor's 2.5.1), as tor does when it
// builds circuits. They must share one session: all open within 5 s of the
// session coming up (the first connection also waits for the rendezvous),
// then ten more opened while it is up each open within 5 s, and every
// connection carries its own hash-checked download.
func TestSnowfallClientParallelSOCKS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Debian})

	type opened struct {
		conn     net.Conn
		asked    time.Time
		at       time.Time
		err      error
		download testbed.Transfer
	}
	openAll := func(limit time.Duration) []opened {
		out := make([]opened, parallelConns)
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() {
				dctx, dcancel := context.WithTimeout(ctx, limit)
				defer dcancel()
				out[i].asked = time.Now()
				out[i].conn, out[i].err = c.Dial(dctx)
				out[i].at = time.Now()
			})
		}
		wg.Wait()
		return out
	}
	downloadAll := func(conns []opened, seed uint64) {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				conns[i].download, conns[i].err = testbed.Download(ctx, conns[i].conn, 2_000_000+int64(i), seed+uint64(i))
			})
		}
		wg.Wait()
		for i, o := range conns {
			if o.err != nil {
				t.Errorf("download %d: %v (%v)", i, o.err, o.download)
			}
		}
	}

	// Cold: the session does not exist yet. Rendezvous may need a retry
	// while the proxy has not polled, so the dials get 90 s; the bound is
	// on the spread once the first is open.
	cold := openAll(90 * time.Second)
	first := time.Time{}
	for i, o := range cold {
		if o.err != nil {
			t.Fatalf("cold connection %d did not open: %v\nclient log tail:\n%s", i, o.err, testbed.Tail(c.ClientLog, 20))
		}
		if first.IsZero() || o.at.Before(first) {
			first = o.at
		}
	}
	var spread time.Duration
	for _, o := range cold {
		spread = max(spread, o.at.Sub(first))
	}
	t.Logf("cold: first connection open after %v, all %d within %v of it",
		first.Sub(cold[0].asked).Round(time.Millisecond), parallelConns, spread.Round(time.Millisecond))
	if spread > openBound {
		t.Errorf("cold connections opened over %v after the first, want at most %v", spread, openBound)
	}

	// Warm: the session is up (the cold streams are still open).
	warm := openAll(openBound)
	var slowest time.Duration
	for i, o := range warm {
		if o.err != nil {
			t.Fatalf("warm connection %d did not open within %v: %v", i, openBound, o.err)
		}
		slowest = max(slowest, o.at.Sub(o.asked))
	}
	t.Logf("warm: %d connections opened, slowest in %v", parallelConns, slowest.Round(time.Millisecond))

	downloadAll(cold, 100)
	downloadAll(warm, 200)
	ok := 0
	for _, r := range c.Target.Results() {
		if r.Command == "SEND" && r.OK {
			ok++
		}
	}
	if ok != 2*parallelConns {
		t.Errorf("target completed %d hash-checked downloads, want %d", ok, 2*parallelConns)
	}

	log, err := os.ReadFile(c.ClientLog)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `msg="session started"`); n != 1 {
		t.Errorf("%d sessions started for %d connections, want 1", n, 2*parallelConns)
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
