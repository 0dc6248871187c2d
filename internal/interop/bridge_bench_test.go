//go:build integration

package interop

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// BenchmarkBridgeSessionMemory measures the built snowfall-server's
// resident memory per idle session (a KCP/smux session that has sent an
// smux keep-alive, no stream, its WebSocket open) and per active session
// (one stream to tor that has carried 64 KiB each way and stays open), and
// the sessions that fit in 1 GiB at the idle figure. Run it once:
//
//	make build && SNOWFALL_BIN=$PWD/bin go test -run X -bench BridgeSessionMemory -benchtime 1x ./internal/interop/
//
// SNOWFALL_IDLE_SESSIONS (default 2000) sets the idle count.
func BenchmarkBridgeSessionMemory(b *testing.B) {
	idle := 2000
	if s := os.Getenv("SNOWFALL_IDLE_SESSIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		idle = n
	}
	const active = 100
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		br := startBridgeProcess(ctx, b, b.TempDir(), "--max-sessions-per-source", "-1", "--max-websockets-per-source", "-1",
			"--max-sessions", strconv.Itoa(idle+active+10))
		// settle returns RSS and live memory (heap and stacks after a
		// GC) once the bridge has been quiet for a moment.
		settle := func() (int64, int64) {
			time.Sleep(3 * time.Second)
			live, err := br.live()
			if err != nil {
				b.Fatal(err)
			}
			return br.rss(b), live
		}
		base, baseLive := settle()

		// Idle sessions: a prologue and one KCP segment carrying an smux
		// NOP, then nothing but reading what the bridge sends.
		nop := smuxNOP()
		pkt, _ := encapsulation.AppendData(nil, kcpSegment(0, nop))
		var conns []net.Conn
		var mu sync.Mutex
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for range idle {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := rawWebSocket(ctx, br.url, false)
				if err != nil {
					b.Error(err)
					return
				}
				c.Write(pkt)
				go io.Copy(io.Discard, c)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
		waitCounters(ctx, b, br, func(c counters) bool { return c.SessionsRunning >= idle })
		withIdle, idleLive := settle()

		// Active sessions.
		var clients []*tunnelClient
		for range active {
			tc := newTunnelClient(b, br.url, "127.0.0.2")
			s, err := tc.sess.OpenStream()
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 64<<10)
			go s.Write(data)
			if _, err := io.ReadFull(s, data); err != nil {
				b.Fatal(err)
			}
			clients = append(clients, tc)
		}
		withActive, activeLive := settle()
		c, _ := br.get("/?gc=1")

		perIdle := float64(withIdle-base) / float64(idle)
		perActive := float64(withActive-withIdle) / float64(active)
		liveIdle := float64(idleLive-baseLive) / float64(idle)
		liveActive := float64(activeLive-idleLive) / float64(active)
		b.ReportMetric(perIdle, "RSS-B/idle-session")
		b.ReportMetric(perActive, "RSS-B/active-session")
		b.ReportMetric(liveIdle, "live-B/idle-session")
		b.ReportMetric(liveActive, "live-B/active-session")
		b.ReportMetric(float64(1<<30)/perIdle, "idle-sessions/GiB")
		b.Logf("RSS %d MiB base, %d MiB with %d idle, %d MiB with %d active more; live %d, %d, %d MiB; %d goroutines, %d MiB of stacks",
			base>>20, withIdle>>20, idle, withActive>>20, active, baseLive>>20, idleLive>>20, activeLive>>20, c.Goroutines, c.StackInuse>>20)
		for _, c := range conns {
			c.Close()
		}
		for _, tc := range clients {
			tc.sess.Close()
		}
		br.pt.Stop(5 * time.Second)
		cancel()
	}
}

// smuxNOP is an smux v2 NOP frame (a keep-alive).
func smuxNOP() []byte { return []byte{2, 3, 0, 0, 0, 0, 0, 0} }

func waitCounters(ctx context.Context, tb testing.TB, b *attackBridge, cond func(counters) bool) {
	tb.Helper()
	for {
		c, err := b.counters()
		if err == nil && cond(c) {
			return
		}
		if ctx.Err() != nil {
			tb.Fatalf("counters never met the condition: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
