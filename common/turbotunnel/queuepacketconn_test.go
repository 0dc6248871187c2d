package turbotunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tagged builds a packet that names its client and sequence number and
// whose contents depend on both, so a packet that lands on the wrong queue,
// or a buffer recycled while still in use, is detected.
func tagged(dst []byte, id ClientID, seq uint32) []byte {
	n := 12 + int(seq*37+uint32(id[0]))%(MaxPacketSize-12)
	dst = append(dst[:0], id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	for i := 12; i < n; i++ {
		dst = append(dst, byte(i)^id[i%8]^byte(seq))
	}
	return dst
}

// checkTagged reports what is wrong with p, which should be one of id's
// packets; it returns the packet's sequence number.
func checkTagged(p []byte, id ClientID) (uint32, error) {
	if len(p) < 12 {
		return 0, fmt.Errorf("packet of %d bytes", len(p))
	}
	if !bytes.Equal(p[:8], id[:]) {
		return 0, fmt.Errorf("packet of client %x on %v's queue", p[:8], id)
	}
	seq := binary.BigEndian.Uint32(p[8:12])
	if want := tagged(nil, id, seq); !bytes.Equal(p, want) {
		return seq, fmt.Errorf("client %v packet %d corrupted", id, seq)
	}
	return seq, nil
}

func clientIDs(n int) []ClientID {
	ids := make([]ClientID, n)
	for i := range ids {
		ids[i] = NewClientID()
		ids[i][7] = byte(i) // distinct even if the random parts collide
		ids[i][6] = byte(i >> 8)
	}
	return ids
}

func TestClientID(t *testing.T) {
	id := ClientID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if id.String() != "0123456789abcdef" || id.Network() != "clientid" {
		t.Fatalf("ClientID = %q/%q", id.Network(), id.String())
	}
	if NewClientID() == NewClientID() {
		t.Fatal("two random ClientIDs are equal")
	}
}

func TestQueuePacketConnIncoming(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	id := ClientID{1}
	p := []byte("hello")
	c.QueueIncoming(p, id)
	copy(p, "XXXXX") // the caller may reuse p at once
	c.QueueIncoming(make([]byte, bufSize+1), id)
	c.QueueIncoming([]byte("second"), id)

	buf := make([]byte, 100)
	n, addr, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || addr != id {
		t.Fatalf("ReadFrom = %q, %v, %v", buf[:n], addr, err)
	}
	// The oversized packet was dropped; a short p truncates.
	n, _, err = c.ReadFrom(buf[:3])
	if err != nil || string(buf[:n]) != "sec" {
		t.Fatalf("ReadFrom into 3 bytes = %q, %v", buf[:n], err)
	}
}

func TestQueuePacketConnIncomingFull(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	for i := range QueueSize + 10 {
		c.QueueIncoming([]byte{byte(i)}, ClientID{})
	}
	if got := len(c.recvQueue); got != QueueSize {
		t.Fatalf("incoming queue holds %d packets, want %d", got, QueueSize)
	}
}

func TestQueuePacketConnWriteTo(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	a, b := ClientID{'a'}, ClientID{'b'}
	p := []byte("to a")
	if n, err := c.WriteTo(p, a); n != len(p) || err != nil {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	copy(p, "XXXX") // KCP reuses its buffer
	if _, err := c.WriteTo([]byte("to b"), b); err != nil {
		t.Fatal(err)
	}
	// Oversized packets are dropped.
	if n, err := c.WriteTo(make([]byte, MaxPacketSize+1), a); n != MaxPacketSize+1 || err != nil {
		t.Fatalf("oversized WriteTo = %d, %v", n, err)
	}
	// Addresses of other types work as keys too, by value.
	udp := func() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }
	if _, err := c.WriteTo([]byte("to udp"), udp()); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		addr net.Addr
		want string
	}{{a, "to a"}, {b, "to b"}, {udp(), "to udp"}} {
		q := c.OutgoingQueue(tt.addr)
		if len(q) != 1 {
			t.Fatalf("queue for %v holds %d packets, want 1", tt.addr, len(q))
		}
		got := <-q
		if string(got) != tt.want {
			t.Fatalf("queue for %v: %q, want %q", tt.addr, got, tt.want)
		}
		c.Restore(got)
	}
	c.Restore([]byte("not ours")) // ignored
}

func TestQueuePacketConnWriteToFull(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	id := ClientID{9}
	for i := range QueueSize + 10 {
		if _, err := c.WriteTo([]byte{byte(i)}, id); err != nil {
			t.Fatal(err)
		}
	}
	q := c.OutgoingQueue(id)
	if len(q) != QueueSize {
		t.Fatalf("queue holds %d packets, want %d", len(q), QueueSize)
	}
	if p := <-q; p[0] != 0 {
		t.Fatalf("first packet %d, want 0 (the newest are dropped)", p[0])
	}
}

// setClock makes c read time from *now.
func setClock(c *QueuePacketConn, now *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = func() time.Time { return *now }
}

func (c *QueuePacketConn) numQueues() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.clients)
}

func TestQueuePacketConnExpiry(t *testing.T) {
	const timeout = time.Hour // the janitor never runs; expire is called by hand
	c := NewQueuePacketConn(ClientID{}, timeout)
	defer c.Close()
	now := time.Unix(1000, 0)
	setClock(c, &now)
	a, b := ClientID{'a'}, ClientID{'b'}
	c.WriteTo([]byte("a1"), a)
	c.WriteTo([]byte("b1"), b)
	qa := c.OutgoingQueue(a)

	now = now.Add(timeout / 2)
	c.OutgoingQueue(b) // a use refreshes b's queue
	c.expire()
	if c.numQueues() != 2 {
		t.Fatalf("%d queues before the timeout, want 2", c.numQueues())
	}

	now = now.Add(timeout/2 + time.Second) // a idle > timeout, b not
	c.expire()
	if c.numQueues() != 1 {
		t.Fatalf("%d queues after a's timeout, want 1", c.numQueues())
	}
	if len(qa) != 0 {
		t.Fatalf("expired queue still holds %d packets", len(qa))
	}
	if q := c.OutgoingQueue(a); q == qa || len(q) != 0 {
		t.Fatal("a's queue was not replaced by a fresh one")
	}
	if q := c.OutgoingQueue(b); len(q) != 1 || string(<-q) != "b1" {
		t.Fatal("b's queue lost its packet")
	}

	now = now.Add(2 * timeout)
	c.expire()
	if c.numQueues() != 0 {
		t.Fatalf("%d queues left after everything timed out", c.numQueues())
	}
}

func TestQueuePacketConnJanitor(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, 5*time.Millisecond)
	defer c.Close()
	c.WriteTo([]byte("x"), ClientID{1})
	for deadline := time.Now().Add(10 * time.Second); c.numQueues() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the janitor never expired an idle queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueuePacketConnClose(t *testing.T) {
	before := runtime.NumGoroutine()
	c := NewQueuePacketConn(ClientID{'L'}, time.Millisecond)
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for _, err := range []error{<-errc, second(c.ReadFrom(nil)), second2(c.WriteTo([]byte("x"), ClientID{})), c.Close()} {
		var opErr *net.OpError
		if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) || !errors.As(err, &opErr) {
			t.Fatalf("error after Close = %v, want a *net.OpError wrapping ErrClosed and net.ErrClosed", err)
		}
	}
	c.QueueIncoming([]byte("late"), ClientID{}) // dropped, no panic
	// Close waits for the janitor, so every goroutine is gone now.
	if after := waitGoroutines(before); after > before {
		t.Fatalf("%d goroutines after Close, %d before", after, before)
	}
}

func second[A, B any](_ A, _ B, err error) error { return err }
func second2[A any](_ A, err error) error        { return err }

// waitGoroutines waits a little for the goroutine count to drop to want
// (exiting goroutines take a moment to be unaccounted) and returns it.
func waitGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 200 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestQueuePacketConnManyClients pushes distinct tagged packets for 200
// clients through one QueuePacketConn in both directions at once, with
// buffers recycled as eagerly as the ownership rules allow, and checks that
// every packet arrives intact, once, in order and on its own client's queue.
func TestQueuePacketConnManyClients(t *testing.T) {
	const (
		clients = 200
		perOut  = 100 // < QueueSize, so no outgoing packet is dropped
		rounds  = 20  // incoming: 2 packets per client per round
		writers = 8
		readers = 4
	)
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	ids := clientIDs(clients)
	errs := make(chan error, clients+readers+writers)
	var wg sync.WaitGroup

	// Outgoing: a few writers share clients, like KCP sessions on one
	// listener, and each scribbles over its buffer after every WriteTo.
	for w := range writers {
		wg.Go(func() {
			var buf []byte
			for seq := range uint32(perOut) {
				for i := w; i < clients; i += writers {
					buf = tagged(buf, ids[i], seq)
					if _, err := c.WriteTo(buf, ids[i]); err != nil {
						errs <- err
						return
					}
					clear(buf)
				}
			}
		})
	}
	// One consumer per client, like a carrier's downstream pump.
	for _, id := range ids {
		wg.Go(func() {
			q := c.OutgoingQueue(id)
			for want := range uint32(perOut) {
				p := <-q
				seq, err := checkTagged(p, id)
				if err == nil && seq != want {
					err = fmt.Errorf("client %v: packet %d, want %d", id, seq, want)
				}
				if err != nil {
					errs <- err
					return
				}
				for i := range p {
					p[i] = 0xee // anyone else holding this buffer would notice
				}
				c.Restore(p)
			}
		})
	}

	// Incoming: every client queues 2 packets per round; readers drain the
	// round before the next starts, so the shared queue never overflows.
	type got struct {
		id  ClientID
		seq uint32
	}
	received := make(chan got, clients*2)
	var readersWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() {
			buf := make([]byte, bufSize)
			for {
				n, addr, err := c.ReadFrom(buf)
				if err != nil {
					return // closed at the end of the test
				}
				id, ok := addr.(ClientID)
				if !ok {
					errs <- fmt.Errorf("ReadFrom address %v", addr)
					return
				}
				seq, err := checkTagged(buf[:n], id)
				if err != nil {
					errs <- err
					return
				}
				received <- got{id, seq}
			}
		})
	}
	wg.Go(func() {
		last := make(map[ClientID]int64)
		for _, id := range ids {
			last[id] = -1
		}
		for r := range uint32(rounds) {
			var round sync.WaitGroup
			for _, id := range ids {
				round.Go(func() {
					buf := tagged(nil, id, 2*r)
					c.QueueIncoming(buf, id)
					clear(buf)
					buf = tagged(buf, id, 2*r+1)
					c.QueueIncoming(buf, id)
					clear(buf)
				})
			}
			round.Wait()
			seen := make(map[got]bool)
			for range 2 * clients {
				g := <-received
				if seen[g] || g.seq/2 != r {
					errs <- fmt.Errorf("round %d: unexpected packet %d from %v", r, g.seq, g.id)
					return
				}
				seen[g] = true
			}
		}
	})

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case err := <-errs:
		t.Fatal(err)
	case <-done:
	}
	c.Close()
	readersWG.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestQueuePacketConnExpiryRace lets the janitor expire and drain queues
// while carriers consume them and KCP writes to them. Packets may be lost;
// none may be corrupted or misdelivered.
func TestQueuePacketConnExpiryRace(t *testing.T) {
	c := NewQueuePacketConn(ClientID{}, time.Millisecond)
	defer c.Close()
	ids := clientIDs(20)
	errs := make(chan error, len(ids))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			var buf []byte
			for seq := range uint32(2000) {
				buf = tagged(buf, id, seq)
				c.WriteTo(buf, id)
				clear(buf)
			}
		})
		wg.Go(func() {
			for {
				// Re-fetch the queue now and then, like a new carrier.
				q := c.OutgoingQueue(id)
				for range 50 {
					select {
					case <-stop:
						return
					case p := <-q:
						if _, err := checkTagged(p, id); err != nil {
							errs <- err
							return
						}
						clear(p)
						c.Restore(p)
					case <-time.After(time.Millisecond):
					}
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func BenchmarkQueuePacketConnWriteTo(b *testing.B) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	id := ClientID{1}
	q := c.OutgoingQueue(id)
	p := make([]byte, MaxPacketSize)
	b.ReportAllocs()
	for b.Loop() {
		c.WriteTo(p, id)
		c.Restore(<-q)
	}
}

func BenchmarkQueuePacketConnReadFrom(b *testing.B) {
	c := NewQueuePacketConn(ClientID{}, time.Minute)
	defer c.Close()
	var id net.Addr = ClientID{1}
	p := make([]byte, MaxPacketSize)
	b.ReportAllocs()
	for b.Loop() {
		c.QueueIncoming(p, id)
		c.ReadFrom(p)
	}
}
