package turbotunnel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// segment builds one KCP segment header (no payload) for the fake peers.
func segment(conv uint32, cmd byte, sn, una uint32) []byte {
	p := make([]byte, kcpHeaderLen)
	binary.LittleEndian.PutUint32(p, conv)
	p[offCmd] = cmd
	binary.LittleEndian.PutUint16(p[offWnd:], 128)
	binary.LittleEndian.PutUint32(p[offSN:], sn)
	binary.LittleEndian.PutUint32(p[offUna:], una)
	return p
}

const (
	kcpCmdAck  = 82
	kcpCmdWins = 84
	testConv   = 0x1234
)

// simBridge is the bridge end of a simulated path: the real
// QueuePacketConn and carrier pumps, with a stand-in for KCP that
// acknowledges pushes and answers window probes.
type simBridge struct {
	pconn    *QueuePacketConn
	wg       sync.WaitGroup
	carriers atomic.Int64
	probes   atomic.Int64
}

func newSimBridge() *simBridge {
	b := &simBridge{pconn: NewQueuePacketConn(stubAddr("bridge"), time.Minute)}
	b.wg.Go(b.kcp)
	return b
}

// serve runs one carrier's bridge end.
func (b *simBridge) serve(e *simEnd) {
	b.wg.Go(func() {
		br := bufio.NewReader(e)
		id, err := ReadPrologue(br)
		if err != nil {
			e.Close()
			return
		}
		b.carriers.Add(1)
		ServeCarrier(e, br, QueueTo(b.pconn, id), b.pconn, id, 0)
	})
}

// kcp answers like the bridge's KCP: an ACK (with una) for each push, a
// window update for each probe.
func (b *simBridge) kcp() {
	buf := make([]byte, 2048)
	var una uint32
	for {
		n, addr, err := b.pconn.ReadFrom(buf)
		if err != nil {
			return
		}
		p := buf[:n]
		if len(p) < kcpHeaderLen {
			continue
		}
		sn := binary.LittleEndian.Uint32(p[offSN:])
		switch p[offCmd] {
		case kcpCmdPush:
			if sn == una {
				una++
			}
			b.pconn.WriteTo(segment(testConv, kcpCmdAck, sn, una), addr)
		case kcpCmdWask:
			b.probes.Add(1)
			b.pconn.WriteTo(segment(testConv, kcpCmdWins, 0, una), addr)
		}
	}
}

func (b *simBridge) close() {
	b.pconn.Close()
	b.wg.Wait()
}

// simClient stands in for the client's KCP: it pushes sequence numbers
// with (re)transmissions every 50 ms until acknowledged, and records when
// each was acknowledged.
type simClient struct {
	conn  *CarrierConn
	mu    sync.Mutex
	una   uint32
	next  uint32      // next sequence number to push
	acked []time.Time // acked[sn] = when sn was acknowledged
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newSimClient(conn *CarrierConn) *simClient {
	c := &simClient{conn: conn, stop: make(chan struct{})}
	c.wg.Go(c.read)
	return c
}

func (c *simClient) read() {
	buf := make([]byte, 2048)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < kcpHeaderLen {
			continue
		}
		una := binary.LittleEndian.Uint32(buf[offUna:])
		c.mu.Lock()
		for c.una < una {
			c.acked = append(c.acked, time.Now())
			c.una++
		}
		c.mu.Unlock()
	}
}

// pushUntil sends one new segment every 20 ms, and resends the oldest
// unacknowledged one every 50 ms, until count segments are acknowledged
// or limit passes.
func (c *simClient) pushUntil(count int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	next := c.next
	defer func() { c.next = next }()
	lastResend := time.Now()
	for time.Now().Before(deadline) {
		c.mu.Lock()
		una := c.una
		c.mu.Unlock()
		if int(una) >= count {
			return
		}
		if next < uint32(count) && next-una < 32 {
			c.conn.WriteTo(segment(testConv, kcpCmdPush, next, 0), nil)
			next++
		}
		if time.Since(lastResend) >= 50*time.Millisecond && una < next {
			c.conn.WriteTo(segment(testConv, kcpCmdPush, una, 0), nil)
			lastResend = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *simClient) ackTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.acked...)
}

// longestGap returns the longest time between consecutive
// acknowledgements after from.
func longestGap(times []time.Time, from time.Time) time.Duration {
	var gap time.Duration
	prev := from
	for _, t := range times {
		if t.Before(from) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return gap
}

// TestCarrierConnFailoverBound: with two carriers attached, the one in use
// dies silently (as a proxy killed with SIGKILL: the client hears nothing,
// no error). Sending must move to the spare within FailTimeout of silence
// while data is outstanding, so acknowledgements stop for at most
// FailTimeout plus one check and a round trip. Simulated time.
func TestCarrierConnFailoverBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		prof linkProfile
	}{
		{"clean 20ms", linkProfile{Delay: 20 * time.Millisecond}},
		{"80ms jitter", linkProfile{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond}},
		{"lossy", linkProfile{Delay: 20 * time.Millisecond, Loss: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bridge := newSimBridge()
				defer bridge.close()
				var switches atomic.Int64
				conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{
					OnSwitch: func(r string) { switches.Add(1); t.Logf("switch at %v: %s", time.Now().Format("15:04:05.000"), r) },
				})
				links := []*simLink{newSimLink(1, tc.prof), newSimLink(2, tc.prof)}
				for _, l := range links {
					bridge.serve(l.Bridge)
					if err := conn.Add(l.Client); err != nil {
						t.Fatal(err)
					}
				}
				client := newSimClient(conn)

				client.pushUntil(100, time.Minute)
				if n := switches.Load(); n != 0 {
					t.Fatalf("%d switches before any failure", n)
				}
				links[0].Cut() // the first attached is the one in use
				killed := time.Now()
				client.pushUntil(200, time.Minute)
				acks := client.ackTimes()
				if len(acks) < 200 {
					t.Fatalf("only %d of 200 segments acknowledged after the kill", len(acks))
				}
				gap := longestGap(acks, killed)
				t.Logf("longest pause after the kill: %v (simulated)", gap)
				// FailTimeout of silence, one monitor tick, the first
				// resend and a round trip on the new carrier.
				bound := DefaultFailTimeout + DefaultFailTimeout/10 + 50*time.Millisecond + 2*(tc.prof.Delay+tc.prof.Jitter) + 100*time.Millisecond
				if gap > bound {
					t.Errorf("acknowledgements paused %v after the kill, want at most %v", gap, bound)
				}
				if switches.Load() != 1 {
					t.Errorf("%d switches, want 1", switches.Load())
				}
				client.pushUntil(300, time.Minute) // a flow the dead carrier misses for closeAfter
				if n := conn.Carriers(); n != 1 {
					t.Errorf("%d carriers attached after the kill, want 1 (the silent one closed)", n)
				}
				client.conn.Close()
				client.wg.Wait()
				for _, l := range links {
					l.Close()
				}
			})
		})
	}
}

// TestCarrierConnIdleCarriersLive: carriers through proxies that close a
// channel after 30 s without bytes from the bridge (Tor's proxies) stay up
// through ten idle minutes, because heartbeats draw answers from the
// bridge onto each of them. Simulated time.
func TestCarrierConnIdleCarriersLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bridge := newSimBridge()
		defer bridge.close()
		conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
		prof := linkProfile{Delay: 30 * time.Millisecond, IdleClose: 30 * time.Second}
		var links []*simLink
		for i := range 3 {
			l := newSimLink(uint64(i+1), prof)
			links = append(links, l)
			bridge.serve(l.Bridge)
			if err := conn.Add(l.Client); err != nil {
				t.Fatal(err)
			}
		}
		client := newSimClient(conn)
		client.pushUntil(1, time.Minute) // KCP has spoken once: heartbeats can copy its conversation
		time.Sleep(10 * time.Minute)
		if n := conn.Carriers(); n != 3 {
			t.Errorf("%d of 3 carriers left after 10 idle minutes", n)
		}
		if n := bridge.carriers.Load(); n != 3 {
			t.Errorf("bridge saw %d carriers, want 3", n)
		}
		if bridge.probes.Load() == 0 {
			t.Error("no heartbeat reached the bridge")
		}
		conn.Close()
		client.wg.Wait()
		for _, l := range links {
			l.Close()
		}
	})
}

// TestCarrierConnNoCarrier: packets written before the first carrier wait
// and go out on it; once every carrier has died, writes still succeed
// (KCP retransmits) and a later carrier takes over, reported as a switch.
func TestCarrierConnNoCarrier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bridge := newSimBridge()
		defer bridge.close()
		var switches atomic.Int64
		conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{OnSwitch: func(string) { switches.Add(1) }})
		client := newSimClient(conn)
		conn.WriteTo(segment(testConv, kcpCmdPush, 0, 0), nil)
		l1 := newSimLink(1, linkProfile{Delay: 10 * time.Millisecond})
		bridge.serve(l1.Bridge)
		conn.Add(l1.Client)
		client.pushUntil(10, time.Minute)
		if got := len(client.ackTimes()); got < 10 {
			t.Fatalf("%d acknowledged", got)
		}
		l1.Close()
		synctest.Wait()
		if n := conn.Carriers(); n != 0 {
			t.Fatalf("%d carriers after the only one closed", n)
		}
		l2 := newSimLink(2, linkProfile{Delay: 10 * time.Millisecond})
		bridge.serve(l2.Bridge)
		conn.Add(l2.Client)
		client.pushUntil(20, time.Minute)
		if got := len(client.ackTimes()); got < 20 {
			t.Fatalf("%d acknowledged after the second carrier", got)
		}
		if switches.Load() != 1 {
			t.Errorf("%d switches, want 1", switches.Load())
		}
		conn.Close()
		client.wg.Wait()
		l2.Close()
		if err := conn.Add(newSimLink(3, linkProfile{}).Client); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Add after Close: %v", err)
		}
	})
}

// discardCarrier returns a carrier whose far end reads and drops
// everything.
func discardCarrier(b *testing.B) net.Conn {
	near, far := net.Pipe()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := far.Read(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { far.Close() })
	return near
}

// kcpPacket is a full-size KCP push packet, as WriteTo sees under load.
func kcpPacket() []byte {
	p := make([]byte, MaxPacketSize)
	copy(p, segment(testConv, kcpCmdPush, 7, 3))
	binary.LittleEndian.PutUint32(p[offLen:], uint32(MaxPacketSize-kcpHeaderLen))
	return p
}

// BenchmarkCarrierConnWriteTo measures the per-packet send path: header
// notes, copy, queue, batching and the carrier write.
func BenchmarkCarrierConnWriteTo(b *testing.B) {
	conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
	defer conn.Close()
	if err := conn.Add(discardCarrier(b)); err != nil {
		b.Fatal(err)
	}
	p := kcpPacket()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		conn.WriteTo(p, nil)
	}
}

// FuzzCarrierConnReceive feeds arbitrary bridge-to-client bytes to a
// carrier: CarrierConn must neither panic nor deliver more packets than the
// stream can hold, and a broken stream only ends that carrier.
func FuzzCarrierConnReceive(f *testing.F) {
	f.Add([]byte{0x80 | 24, 1, 2, 3, 4, 82, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x05, 0, 0, 0, 0, 0, 0x81, 7})
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
		defer conn.Close()
		near, far := net.Pipe()
		go func() {
			var prologue [PrologueLen]byte
			if _, err := io.ReadFull(far, prologue[:]); err == nil {
				far.Write(in)
			}
			far.Close()
		}()
		if err := conn.Add(near); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); conn.Carriers() > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("carrier still attached 10 s after its stream ended")
			}
		}
		got := 0
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now())
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				break
			}
			got++
		}
		if got > len(in) {
			t.Fatalf("%d packets from %d bytes", got, len(in))
		}
	})
}
