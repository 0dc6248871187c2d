package turbotunnel

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/xtaci/kcp-go/v5"
)

// kcpBridge is a bridge with real KCP and smux (what server/ runs), over
// simulated carriers; each stream is echoed.
type kcpBridge struct {
	pconn *QueuePacketConn
	ln    *kcp.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	sess  []*Session
}

func newKCPBridge(t *testing.T) *kcpBridge {
	b := &kcpBridge{pconn: NewQueuePacketConn(stubAddr("bridge"), time.Minute)}
	ln, err := Listen(b.pconn)
	if err != nil {
		t.Fatal(err)
	}
	b.ln = ln
	b.wg.Go(func() {
		for {
			conn, err := ln.AcceptKCP()
			if err != nil {
				return
			}
			s, err := NewServerSession(conn, BridgeConfig())
			if err != nil {
				continue
			}
			b.mu.Lock()
			b.sess = append(b.sess, s)
			b.mu.Unlock()
			b.wg.Go(func() {
				for {
					st, err := s.AcceptStream()
					if err != nil {
						return
					}
					go func() { io.Copy(st, st); st.Close() }()
				}
			})
		}
	})
	t.Cleanup(b.close)
	return b
}

func (b *kcpBridge) serve(e *simEnd) {
	b.wg.Go(func() {
		br := bufio.NewReader(e)
		id, err := ReadPrologue(br)
		if err != nil {
			e.Close()
			return
		}
		ServeCarrier(e, br, QueueTo(b.pconn, id), b.pconn, id, 0)
	})
}

func (b *kcpBridge) close() {
	b.ln.Close()
	b.pconn.Close()
	b.mu.Lock()
	for _, s := range b.sess {
		s.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echoCheck writes size seeded bytes on conn and checks the echo.
func echoCheck(conn net.Conn, size int, seed uint64) error {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	go conn.Write(data)
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	got := make([]byte, size)
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) || !bytes.Equal(got, data) {
		return fmt.Errorf("echo of %d bytes differs", size)
	}
	return nil
}

// TestSessionOverLossyCarriers runs the real client and bridge session
// (KCP and smux as configured by this package) over two simulated carriers
// that lose 2 % of messages and reorder them, with three streams at once,
// and kills the carrier in use silently halfway. Every stream's bytes must
// come back intact.
func TestSessionOverLossyCarriers(t *testing.T) {
	bridge := newKCPBridge(t)
	conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
	defer conn.Close()
	prof := linkProfile{Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.02}
	links := []*simLink{newSimLink(11, prof), newSimLink(12, prof)}
	for _, l := range links {
		bridge.serve(l.Bridge)
		if err := conn.Add(l.Client); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := NewClientSession(conn, stubAddr("bridge"), ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	const streams, size = 3, 2 << 20
	errs := make(chan error, streams)
	for i := range streams {
		st, err := sess.Mux.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer st.Close()
			errs <- echoCheck(st, size, uint64(i))
		}()
	}
	time.AfterFunc(30*time.Millisecond, links[0].Cut)
	for range streams {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestSessionHeartbeatsKeepIdleCarriers: with the real KCP at the bridge,
// the heartbeat window probes are answered on each idle carrier, so
// carriers whose proxies close after 3 s without bytes from the bridge
// survive an idle session. Timeouts are scaled down so this runs in
// real time.
func TestSessionHeartbeatsKeepIdleCarriers(t *testing.T) {
	bridge := newKCPBridge(t)
	conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{KeepAlive: 300 * time.Millisecond})
	defer conn.Close()
	prof := linkProfile{Delay: 5 * time.Millisecond, IdleClose: 3 * time.Second}
	for i := range 3 {
		l := newSimLink(uint64(20+i), prof)
		bridge.serve(l.Bridge)
		if err := conn.Add(l.Client); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := NewClientSession(conn, stubAddr("bridge"), ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	st, err := sess.Mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(st, 1000, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second) // idle: more than two proxy timeouts
	if n := conn.Carriers(); n != 3 {
		t.Fatalf("%d of 3 carriers left after an idle spell", n)
	}
	if err := echoCheck(st, 1000, 2); err != nil {
		t.Fatal(err)
	}
}

// TestSessionMaxStreams: the bridge refuses streams beyond MaxStreams and
// keeps serving the session.
func TestSessionMaxStreams(t *testing.T) {
	server := NewQueuePacketConn(stubAddr("bridge"), time.Minute)
	defer server.Close()
	ln, err := Listen(server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := BridgeConfig()
	cfg.MaxStreams = 2
	refused := make(chan error, 10)
	go func() {
		conn, err := ln.AcceptKCP()
		if err != nil {
			return
		}
		s, err := NewServerSession(conn, cfg)
		if err != nil {
			return
		}
		defer s.Close()
		for {
			st, err := s.AcceptStream()
			if errors.Is(err, ErrTooManyStreams) {
				refused <- err
				continue
			}
			if err != nil {
				return
			}
			go func() { io.Copy(st, st); st.Close() }()
		}
	}()
	conn := NewCarrierConn(NewClientID(), stubAddr("bridge"), CarrierOptions{})
	defer conn.Close()
	l := newSimLink(1, linkProfile{Delay: time.Millisecond})
	b := &kcpBridge{pconn: server}
	b.serve(l.Bridge)
	conn.Add(l.Client)
	sess, err := NewClientSession(conn, stubAddr("bridge"), ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var open []net.Conn
	for i := range 2 {
		st, _ := sess.Mux.OpenStream()
		if err := echoCheck(st, 100, uint64(i)); err != nil {
			t.Fatalf("stream %d within the limit: %v", i, err)
		}
		open = append(open, st)
	}
	third, _ := sess.Mux.OpenStream()
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("third stream not refused")
	}
	if err := echoCheck(third, 100, 3); err == nil {
		t.Error("the refused stream carried data")
	}
	if err := echoCheck(open[0], 100, 4); err != nil {
		t.Errorf("session unusable after a refusal: %v", err)
	}
}
