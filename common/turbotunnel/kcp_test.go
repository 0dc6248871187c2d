package turbotunnel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// testBridge does what the bridge does with each carrier (PROTOCOL.md §6.6):
// read the prologue, then pump packets between the carrier and the
// QueuePacketConn under the client's ClientID.
type testBridge struct {
	pconn *QueuePacketConn
	wg    sync.WaitGroup
}

func (b *testBridge) serve(conn net.Conn) {
	b.wg.Go(func() {
		defer conn.Close()
		var prologue [16]byte
		if _, err := io.ReadFull(conn, prologue[:]); err != nil || [8]byte(prologue[:8]) != Token {
			return
		}
		id := ClientID(prologue[8:])
		upstreamDone := make(chan struct{})
		b.wg.Go(func() {
			q := b.pconn.OutgoingQueue(id)
			for {
				select {
				case <-upstreamDone:
					return
				case p := <-q:
					_, err := encapsulation.WriteData(conn, p)
					b.pconn.Restore(p)
					if err != nil {
						conn.Close()
						return
					}
				}
			}
		})
		br := bufio.NewReader(conn)
		buf := make([]byte, bufSize)
		for {
			n, err := encapsulation.ReadData(br, buf)
			if err == io.ErrShortBuffer {
				continue
			}
			if err != nil {
				break
			}
			b.pconn.QueueIncoming(buf[:n], id)
		}
		close(upstreamDone)
	})
}

// TestKCPOverRedialingCarriers runs a KCP+smux session from a
// RedialPacketConn to a QueuePacketConn over net.Pipe carriers, kills the
// carrier three times mid-transfer, and checks that 5 MB arrive intact.
func TestKCPOverRedialingCarriers(t *testing.T) {
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

	id := NewClientID()
	var mu sync.Mutex
	var current net.Conn
	dials := 0
	dial := func(ctx context.Context) (net.Conn, error) {
		near, far := net.Pipe()
		bridge.serve(far)
		if err := WritePrologue(near, id); err != nil {
			return nil, err
		}
		mu.Lock()
		current = near
		dials++
		mu.Unlock()
		return near, nil
	}
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		current.Close()
	}

	client := NewRedialPacketConn(id, stubAddr("bridge"), dial)
	defer client.Close()

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
