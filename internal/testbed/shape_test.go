//go:build integration

package testbed

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed/shaper"
)

// shapePair builds a network with two hosts, a and b, joined by the bridge.
func shapePair(ctx context.Context, t *testing.T) (a, b *Namespace) {
	t.Helper()
	n := newTestNetwork(t)
	a, err := n.AddHost(ctx, "a", ClientIP)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = n.AddHost(ctx, "b", ProxyIP); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func shape(ctx context.Context, t *testing.T, ns *Namespace, cfg ShapeConfig) *Shaper {
	t.Helper()
	s, err := ns.Shape(ctx, "eth0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %v: %v", s, err)
		}
	})
	return s
}

func checkKernel(t *testing.T, s *Shaper) {
	t.Helper()
	ks, err := s.KernelStats()
	if err != nil {
		t.Fatal(err)
	}
	if ks.QueueDropped != 0 || ks.UserDropped != 0 {
		t.Errorf("%v: kernel dropped packets the shaper never saw: %+v", s, ks)
	}
	if n, err := s.VerdictErrors(); n != 0 {
		t.Errorf("%v: %d verdicts refused: %v", s, n, err)
	}
}

// udpEcho echoes datagrams in ns until the test ends.
func udpEcho(t *testing.T, ns *Namespace) netip.AddrPort {
	t.Helper()
	pc, err := ns.ListenPacket("udp4", netip.AddrPortFrom(ns.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestShapeDelay: 40 ms on each end's arrivals make an 80 ms round trip.
func TestShapeDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := shapePair(ctx, t)
	echo := udpEcho(t, b)
	sa := shape(ctx, t, a, ShapeConfig{Link: shaper.Config{Delay: 40 * time.Millisecond}})
	sb := shape(ctx, t, b, ShapeConfig{Link: shaper.Config{Delay: 40 * time.Millisecond}})

	pc, err := a.ListenPacket("udp4", netip.AddrPortFrom(a.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var rtts []time.Duration
	buf := make([]byte, 64)
	for i := 0; i < 30; i++ {
		start := time.Now()
		binary.BigEndian.PutUint32(buf, uint32(i))
		if _, err := pc.WriteTo(buf[:32], net.UDPAddrFromAddrPort(echo)); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := pc.ReadFrom(buf); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if got := binary.BigEndian.Uint32(buf); got != uint32(i) {
			t.Fatalf("ping %d: answer to %d", i, got)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	med := rtts[len(rtts)/2]
	t.Logf("RTT min %v, median %v, max %v over %d pings", rtts[0], med, rtts[len(rtts)-1], len(rtts))
	// No packet may arrive early; a busy machine may hold one late, so
	// the upper bound on the median is loose.
	if rtts[0] < 80*time.Millisecond {
		t.Errorf("fastest round trip %v, below the 80 ms the shapers add", rtts[0])
	}
	if med > 120*time.Millisecond {
		t.Errorf("median round trip %v, want about 80 ms", med)
	}
	for _, s := range []*Shaper{sa, sb} {
		if st := s.Stats(); st.Delivered != 30 {
			t.Errorf("%v delivered %d packets, want 30", s, st.Delivered)
		}
		checkKernel(t, s)
	}
}

// TestShapeLoss: a seeded loss takes exactly the packets a Link with the
// same seed predicts, at about the configured rate.
func TestShapeLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := shapePair(ctx, t)
	const loss, seed, count = 0.05, 2026, 4000
	cfg := shaper.Config{Loss: loss, Seed: seed}
	s := shape(ctx, t, a, ShapeConfig{Link: cfg, From: []netip.Prefix{netip.PrefixFrom(b.Addr, 32)}})

	rx, err := a.ListenPacket("udp4", netip.AddrPortFrom(a.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := b.ListenPacket("udp4", netip.AddrPortFrom(b.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	got := make([]bool, count)
	var received atomic.Int64
	var mu sync.Mutex
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					err = nil
				}
				recvDone <- err
				return
			}
			if n >= 4 {
				if i := binary.BigEndian.Uint32(buf); i < count {
					mu.Lock()
					got[i] = true
					mu.Unlock()
					received.Add(1)
				}
			}
		}
	}()
	// What the seed says, computed apart from the shaper.
	ref, err := shaper.NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, count)
	for i := range want {
		_, fate := ref.Admit(time.Now(), 228)
		want[i] = fate == shaper.Deliver
	}

	msg := make([]byte, 200)
	to := rx.LocalAddr()
	var expected int64
	for i := uint32(0); i < count; i++ {
		binary.BigEndian.PutUint32(msg, i)
		if _, err := tx.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		if want[i] {
			expected++
		}
		// Keep at most 64 datagrams that should arrive unread, so the
		// receive buffer never overflows however slow the reader is: a
		// datagram lost there would look like the shaper's doing.
		deadline := time.Now().Add(10 * time.Second)
		for expected-received.Load() > 64 {
			if time.Now().After(deadline) {
				t.Fatalf("after datagram %d, %d of %d expected arrived; shaper %+v", i, received.Load(), expected, s.Stats())
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := <-recvDone; err != nil {
		t.Fatal(err)
	}

	var lost, mismatch int
	for i := 0; i < count; i++ {
		if !want[i] {
			lost++
		}
		if want[i] != got[i] {
			mismatch++
		}
	}
	t.Logf("%d of %d lost (%.2f %%), %d differ from the seed's prediction; shaper %+v",
		lost, count, 100*float64(lost)/count, mismatch, s.Stats())
	if mismatch != 0 {
		t.Errorf("%d packets' fates differ from what seed %d predicts", mismatch, seed)
	}
	sd := math.Sqrt(count * loss * (1 - loss))
	if math.Abs(float64(lost)-count*loss) > 4*sd {
		t.Errorf("%d lost, want %.0f ± %.0f", lost, count*loss, 4*sd)
	}
	if st := s.Stats(); st.Packets != count || st.Lost != int64(lost) {
		t.Errorf("shaper saw %d packets and dropped %d; want %d and %d", st.Packets, st.Lost, count, lost)
	}
	checkKernel(t, s)
}

// TestShapeRate: twice the rate offered, the rate comes out, and the
// excess is dropped at the tail of the queue, not pushed back on the
// sender.
func TestShapeRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := shapePair(ctx, t)
	const rate = 8_000_000 // bit/s: 1 MB/s
	s := shape(ctx, t, a, ShapeConfig{Link: shaper.Config{Rate: rate, QueueBytes: 60_000}})

	rx, err := a.ListenPacket("udp4", netip.AddrPortFrom(a.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := b.ListenPacket("udp4", netip.AddrPortFrom(b.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	type result struct {
		bytes       int
		first, last time.Time
		err         error
	}
	rc := make(chan result, 1)
	go func() {
		var r result
		buf := make([]byte, 2048)
		for {
			rx.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					r.err = err
				}
				rc <- r
				return
			}
			now := time.Now()
			if r.first.IsZero() {
				r.first = now
			} else {
				r.bytes += n + 28 // count what crossed after the first
			}
			r.last = now
		}
	}()
	// Offer 2 MB/s for 3 s: 20 datagrams of 1172 bytes (1200 on the wire)
	// every 12 ms.
	msg := make([]byte, 1172)
	to := rx.LocalAddr()
	var offered int
	start := time.Now()
	for tick := 0; time.Since(start) < 3*time.Second; tick++ {
		for i := 0; i < 20; i++ {
			if _, err := tx.WriteTo(msg, to); err != nil {
				t.Fatal(err)
			}
			offered += 1200
		}
		if d := time.Until(start.Add(time.Duration(tick+1) * 12 * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
	}
	sendRate := float64(offered) / time.Since(start).Seconds()
	r := <-rc
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := float64(r.bytes) / r.last.Sub(r.first).Seconds()
	st := s.Stats()
	t.Logf("offered %.2f MB/s, received %.3f MB/s; shaper %+v", sendRate/1e6, got/1e6, st)
	if sendRate < 1.5*rate/8 {
		t.Fatalf("sender managed only %.2f MB/s, not enough to load the link", sendRate/1e6)
	}
	if math.Abs(got-rate/8)/(rate/8) > 0.1 {
		t.Errorf("received %.3f MB/s through a %.1f MB/s limit, want within 10 %%", got/1e6, float64(rate)/8e6)
	}
	if st.Overflow == 0 {
		t.Error("no drop-tail drops with twice the rate offered")
	}
	if st.MaxBacklog > 60_000 {
		t.Errorf("queue reached %d bytes, limit 60000", st.MaxBacklog)
	}
	checkKernel(t, s)
}

// TestShapeClose: closing the shaper removes it and lets held packets go.
func TestShapeClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := shapePair(ctx, t)
	s, err := a.Shape(ctx, "eth0", ShapeConfig{Link: shaper.Config{Delay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	rx, err := a.ListenPacket("udp4", netip.AddrPortFrom(a.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := b.ListenPacket("udp4", netip.AddrPortFrom(b.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, err := tx.WriteTo([]byte("held"), rx.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Packets == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Packets != 1 {
		t.Fatalf("shaper saw %d packets", s.Stats().Packets)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := rx.ReadFrom(buf); err != nil || string(buf[:n]) != "held" {
		t.Fatalf("held packet after close: %q, %v", buf[:n], err)
	}
	// Unshaped now: a new packet arrives at once.
	if _, err := tx.WriteTo([]byte("free"), rx.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	rx.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := rx.ReadFrom(buf); err != nil || string(buf[:n]) != "free" {
		t.Fatalf("after close: %q, %v", buf[:n], err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestShapeBurst: a burst far beyond what a default-sized netlink buffer
// holds reaches the shaper whole (none dropped by the kernel on the way).
func TestShapeBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := shapePair(ctx, t)
	s := shape(ctx, t, a, ShapeConfig{Link: shaper.Config{Delay: 10 * time.Millisecond}})
	tx, err := b.ListenPacket("udp4", netip.AddrPortFrom(b.Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// Nobody reads: the receiving socket drops what overflows it, after
	// the shaper has seen every datagram.
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.Addr, 9))
	const burst = 5000
	msg := make([]byte, 1000)
	for i := 0; i < burst; i++ {
		if _, err := tx.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().Packets < burst && time.Now().Before(deadline) {
		ks, err := s.KernelStats()
		if err != nil {
			t.Fatal(err)
		}
		if ks.QueueDropped+ks.UserDropped > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.Packets != burst {
		t.Errorf("shaper saw %d of %d datagrams", st.Packets, burst)
	}
	checkKernel(t, s)
}
