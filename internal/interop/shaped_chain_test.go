//go:build integration

package interop

import (
	"context"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
	"github.com/snowfall-pt/snowfall/internal/testbed/shaper"
)

// Transfers through impaired links are sized so that today's chain moves
// them in well under a minute each way; the bound on each test is far
// looser, since what must hold is that the stream arrives intact, not how
// fast.

// TestShapedLoss2 moves data both ways through our whole chain with 2 %
// random loss each way on the client↔proxy UDP path.
func TestShapedLoss2(t *testing.T) {
	runShaped(t, Symmetric(shaper.Config{Loss: 0.02, Seed: 2}), 10_000_000)
}

// TestShapedLoss5: the same with 5 % loss each way.
func TestShapedLoss5(t *testing.T) {
	runShaped(t, Symmetric(shaper.Config{Loss: 0.05, Seed: 5}), 4_000_000)
}

// TestShapedRTT80Loss1: 40 ms each way (80 ms round trip) and 1 % loss.
func TestShapedRTT80Loss1(t *testing.T) {
	runShaped(t, Symmetric(shaper.Config{Delay: 40 * time.Millisecond, Loss: 0.01, Seed: 801}), 3_000_000)
}

// TestShapedRate20: a 20 Mbit/s limit each way with the default drop-tail
// queue (100 ms), as on a slow access link.
func TestShapedRate20(t *testing.T) {
	runShaped(t, Symmetric(shaper.Config{Rate: 20_000_000, Seed: 20}), 20_000_000)
}

// runShaped starts Snowfall's client, proxy, broker and bridge, puts imp on
// the WebRTC path, then downloads and uploads size bytes, each checked by
// hash at the receiving end (and the upload by the target too).
func runShaped(t *testing.T, imp Impairment, size int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Snowfall})
	sh, err := c.Shape(ctx, imp)
	if err != nil {
		t.Fatalf("shape: %v", err)
	}
	t.Logf("down: %v; up: %v", imp.Down, imp.Up)

	down, err := testbed.Download(ctx, dialChain(ctx, t, c), size, 91)
	if err != nil {
		t.Fatalf("download: %v (%v)\n%v\nclient log tail:\n%s", err, down, c.CheckAlive(), testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dialChain(ctx, t, c), size, 92)
	if err != nil {
		t.Fatalf("upload: %v (%v)\n%v\nclient log tail:\n%s", err, up, c.CheckAlive(), testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", up)

	var sent, received bool
	for _, r := range c.Target.Results() {
		sent = sent || (r.Command == "SEND" && r.OK && r.Bytes == size)
		received = received || (r.Command == "RECV" && r.OK && r.Bytes == size)
	}
	if !sent || !received {
		t.Errorf("target results %+v", c.Target.Results())
	}

	// The impairment was really there: the shapers saw the traffic and
	// dropped about what they were told to.
	shapers := append([]*testbed.Shaper{sh.Down}, sh.Up...)
	for _, s := range shapers {
		st := s.Stats()
		cfg := s.Cfg.Link
		t.Logf("%v: %+v", s, st)
		if st.Packets < 1000 {
			t.Errorf("%v saw only %d packets: not on the data path?", s, st.Packets)
			continue
		}
		if cfg.Loss > 0 {
			// Generous: thousands of packets make the binomial tight.
			got := float64(st.Lost) / float64(st.Packets)
			if got < cfg.Loss/2 || got > cfg.Loss*1.5 {
				t.Errorf("%v lost %.2f %% of packets, configured %.2f %%", s, 100*got, 100*cfg.Loss)
			}
		}
		if ks, err := s.KernelStats(); err != nil {
			t.Error(err)
		} else if ks.QueueDropped+ks.UserDropped > 0 {
			t.Errorf("%v: the kernel dropped packets the shaper never saw: %+v", s, ks)
		}
	}
	if imp.Down.Rate > 0 {
		// The download crossed the client's limit: its bytes (plus
		// headers) cannot have come faster than the rate.
		limit := float64(imp.Down.Rate) / 8 / 1e6
		if down.MBps() > limit*1.05 {
			t.Errorf("download at %.2f MB/s through a %.2f MB/s limit", down.MBps(), limit)
		}
		if st := sh.Down.Stats(); st.MaxBacklog == 0 {
			t.Errorf("the rate limiter never queued: %+v", st)
		}
	}
	if err := sh.Close(); err != nil {
		t.Errorf("close shapers: %v", err)
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
