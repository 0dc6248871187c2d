package turbotunnel

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// downloadRTO is the bridge sender's retransmission timeout in the
// download simulation. KCP's RTO follows the measured round trip, and
// behind a proxy's backlog that is seconds, so after acknowledgements stop
// the bridge sends nothing for that long; it then doubles on each timeout.
const downloadRTO = 3 * time.Second

// fastResend is how many acknowledgements of later segments make the
// simulated bridge resend the segment at una (KCP's fast retransmit, as
// Snowflake's bridges configure it).
const fastResend = 2

// simDownloader stands in for the bridge's KCP during a download: it
// pushes segments with at most a window outstanding, reads the client's
// una from every segment it gets (as KCP does), and when nothing is
// acknowledged for its RTO resends what is outstanding.
type simDownloader struct {
	pconn  *QueuePacketConn
	window uint32
	mu     sync.Mutex
	addr   net.Addr
	una    uint32
	next   uint32
	// skipped counts acknowledgements of segments after una since una
	// last moved.
	skipped int
	wg      sync.WaitGroup
	stop    chan struct{}
}

func newSimDownloader(pconn *QueuePacketConn, window uint32) *simDownloader {
	d := &simDownloader{pconn: pconn, window: window, stop: make(chan struct{})}
	d.wg.Go(d.read)
	d.wg.Go(d.send)
	return d
}

func (d *simDownloader) read() {
	buf := make([]byte, 2048)
	for {
		n, addr, err := d.pconn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < kcpHeaderLen {
			continue
		}
		una := binary.LittleEndian.Uint32(buf[offUna:])
		sn := binary.LittleEndian.Uint32(buf[offSN:])
		d.mu.Lock()
		d.addr = addr
		if int32(una-d.una) > 0 {
			d.una, d.skipped = una, 0
		}
		// KCP's fast retransmit: acknowledgements of later segments
		// resend the hole at una without waiting for the RTO.
		var hole []uint32
		if buf[offCmd] == kcpCmdAck && int32(sn-d.una) > 0 {
			if d.skipped++; d.skipped == fastResend {
				for s := d.una; s != sn && len(hole) < 32; s++ {
					hole = append(hole, s)
				}
			}
		}
		d.mu.Unlock()
		for _, s := range hole {
			d.push(s, addr)
		}
	}
}

func (d *simDownloader) push(sn uint32, addr net.Addr) {
	p := make([]byte, kcpHeaderLen+200)
	copy(p, segment(testConv, kcpCmdPush, sn, 0))
	binary.LittleEndian.PutUint32(p[offLen:], 200)
	d.pconn.WriteTo(p, addr)
}

// send pushes one new segment every 2 ms while the window allows.
func (d *simDownloader) send() {
	rto := downloadRTO
	lastUna, progress := uint32(0), time.Now()
	for {
		select {
		case <-d.stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		d.mu.Lock()
		addr, una, next := d.addr, d.una, d.next
		if addr != nil && next-una < d.window {
			d.next++
		}
		d.mu.Unlock()
		if addr == nil {
			continue
		}
		if una != lastUna {
			lastUna, progress, rto = una, time.Now(), downloadRTO
		}
		if next-una < d.window {
			d.push(next, addr)
		}
		if time.Since(progress) >= rto && una != next {
			for sn := una; sn != next; sn++ {
				d.push(sn, addr)
			}
			progress, rto = time.Now(), 2*rto
		}
	}
}

func (d *simDownloader) close() {
	close(d.stop)
	d.pconn.Close()
	d.wg.Wait()
}

// simReceiver stands in for the client's KCP during a download: it
// delivers segments in order and answers every push with an ACK carrying
// its una, and nothing else, so nothing it sends is outstanding data.
type simReceiver struct {
	conn      *CarrierConn
	mu        sync.Mutex
	rcvNxt    uint32
	early     map[uint32]bool
	delivered []time.Time // when each segment was delivered in order
	done      chan struct{}
}

func newSimReceiver(conn *CarrierConn) *simReceiver {
	r := &simReceiver{conn: conn, early: map[uint32]bool{}, done: make(chan struct{})}
	go r.read()
	return r
}

func (r *simReceiver) read() {
	defer close(r.done)
	buf := make([]byte, 2048)
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < kcpHeaderLen || buf[offCmd] != kcpCmdPush {
			continue
		}
		sn := binary.LittleEndian.Uint32(buf[offSN:])
		r.mu.Lock()
		if int32(sn-r.rcvNxt) >= 0 {
			r.early[sn] = true
		}
		for r.early[r.rcvNxt] {
			delete(r.early, r.rcvNxt)
			r.rcvNxt++
			r.delivered = append(r.delivered, time.Now())
		}
		una := r.rcvNxt
		r.mu.Unlock()
		r.conn.WriteTo(segment(testConv, kcpCmdAck, sn, una), nil)
	}
}

func (r *simReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.delivered)
}

func (r *simReceiver) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.delivered...)
}

// TestCarrierConnDownloadFailover: during a pure download the client sends
// only acknowledgements, so no sent data is ever outstanding and the
// "no acknowledgement" rule cannot fire. When the carrier in use dies
// silently, the bridge stops getting acknowledgements and, its window
// full, sends nothing more until its retransmission timeout (seconds
// behind a backlog). The dead carrier must still be left within about
// FailTimeout: the other carrier must carry the session again well before
// the bridge's RTO. Simulated time.
func TestCarrierConnDownloadFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pconn := NewQueuePacketConn(stubAddr("bridge"), time.Minute)
		var wg sync.WaitGroup
		var switches atomic.Int64
		conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{
			OnSwitch: func(r string) { switches.Add(1); t.Logf("switch at %v: %s", time.Now().Format("15:04:05.000"), r) },
		})
		prof := linkProfile{Delay: 20 * time.Millisecond}
		links := []*simLink{newSimLink(1, prof), newSimLink(2, prof)}
		for _, l := range links {
			wg.Go(func() {
				br := bufio.NewReader(l.Bridge)
				id, err := ReadPrologue(br)
				if err != nil {
					l.Bridge.Close()
					return
				}
				ServeCarrier(l.Bridge, br, QueueTo(pconn, id), pconn, id, 0)
			})
			if err := conn.Add(l.Client); err != nil {
				t.Fatal(err)
			}
		}
		// The client's KCP speaks first (its SYN-like first packet);
		// the bridge learns the session's address from it.
		conn.WriteTo(segment(testConv, kcpCmdAck, 0, 0), nil)
		down := newSimReceiver(conn)
		bridge := newSimDownloader(pconn, 128)

		for down.count() < 2000 {
			time.Sleep(100 * time.Millisecond)
		}
		if n := switches.Load(); n != 0 {
			t.Fatalf("%d switches before any failure", n)
		}
		links[0].Cut() // the first attached is the one in use
		killed := time.Now()
		for target := down.count() + 4000; down.count() < target; {
			if time.Since(killed) > time.Minute {
				t.Fatalf("download stuck after the kill: %d delivered", down.count())
			}
			time.Sleep(100 * time.Millisecond)
		}
		gap := longestGap(down.times(), killed)
		t.Logf("longest pause after the kill: %v (simulated)", gap)
		// FailTimeout of silence, a monitor tick and round trips; far
		// below the bridge's RTO.
		bound := DefaultFailTimeout + DefaultFailTimeout/10 + 4*prof.Delay + 100*time.Millisecond
		if gap > bound {
			t.Errorf("download paused %v after the kill, want at most %v", gap, bound)
		}
		if n := switches.Load(); n != 1 {
			t.Errorf("%d switches, want 1", n)
		}
		bridge.close()
		conn.Close()
		<-down.done
		for _, l := range links {
			l.Close()
		}
		wg.Wait()
	})
}
