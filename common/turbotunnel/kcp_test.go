package turbotunnel

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// testBridge does what the bridge does with each carrier (PROTOCOL.md §6.6),
// with the bridge's own prologue reader and pumps: read the prologue, then
// pump packets between the carrier and the QueuePacketConn under the
// client's ClientID.
type testBridge struct {
	pconn *QueuePacketConn
	wg    sync.WaitGroup
}

func (b *testBridge) serve(conn net.Conn) {
	b.wg.Go(func() {
		br := bufio.NewReader(conn)
		id, err := ReadPrologue(br)
		if err != nil {
			conn.Close()
			return
		}
		ServeCarrier(conn, br, QueueTo(b.pconn, id), b.pconn, id, 0)
	})
}

// TestKCPOverChangingCarriers runs a KCP+smux session from a CarrierConn
// to a QueuePacketConn over net.Pipe carriers, kills the carrier three
// times mid-transfer (the client then attaches a new one, as it does when
// a proxy goes away), and checks that 5 MB arrive intact.
func TestKCPOverChangingCarriers(t *testing.T) {
	const size = 5 << 20
	kills := []int{1 << 20, 5 << 19, 4 << 20} // bytes received before each kill

	server := NewQueuePacketConn(stubAddr("bridge"), time.Minute)
	defer server.Close()
	bridge := &testBridge{pconn: server}
	defer bridge.wg.Wait()
	ln, err := Listen(server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	client := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
	defer client.Close()
	var mu sync.Mutex
	var current net.Conn
	dials := 0
	add := func() {
		near, far := net.Pipe()
		bridge.serve(far)
		mu.Lock()
		current = near
		dials++
		mu.Unlock()
		if err := client.Add(near); err != nil {
			t.Errorf("adding a carrier: %v", err)
		}
	}
	kill := func() {
		mu.Lock()
		old := current
		mu.Unlock()
		old.Close()
		add()
	}
	add()

	// Server: accept the session and its one stream, hash what arrives,
	// killing the carrier at the chosen points.
	type result struct {
		sum [32]byte
		n   int
		err error
	}
	results := make(chan result, 1)
	go func() {
		var res result
		defer func() { results <- res }()
		conn, err := ln.AcceptKCP()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		sess, err := NewServerSession(conn, BridgeConfig())
		if err != nil {
			res.err = err
			return
		}
		defer sess.Close()
		stream, err := sess.AcceptStream()
		if err != nil {
			res.err = err
			return
		}
		defer stream.Close()
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := stream.Read(buf)
			h.Write(buf[:n])
			before := res.n
			res.n += n
			for _, k := range kills {
				if before < k && res.n >= k {
					kill()
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				res.err = err
				return
			}
		}
		copy(res.sum[:], h.Sum(nil))
	}()

	sess, err := NewClientSession(client, stubAddr("bridge"), ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stream, err := sess.Mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	stream.SetWriteDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.Copy(stream, bytes.NewReader(data)); err != nil {
		t.Fatalf("sending: %v", err)
	}
	stream.Close()

	var res result
	select {
	case res = <-results:
	case <-time.After(2 * time.Minute):
		t.Fatal("transfer did not finish")
	}
	if res.err != nil {
		t.Fatalf("receiving: %v (after %d bytes)", res.err, res.n)
	}
	if res.n != size || res.sum != sha256.Sum256(data) {
		t.Fatalf("received %d bytes with a different hash; sent %d", res.n, size)
	}
	mu.Lock()
	defer mu.Unlock()
	if dials != len(kills)+1 {
		t.Fatalf("%d carriers dialed, want %d", dials, len(kills)+1)
	}
}
