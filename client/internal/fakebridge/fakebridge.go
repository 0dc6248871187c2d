// Package fakebridge is an in-process stand-in for a Snowflake bridge, for
// client tests: it accepts carrier streams (what a proxy would relay),
// checks the turbotunnel prologue, demultiplexes packets by ClientID into a
// KCP listener, and hands every smux stream to a handler.
package fakebridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// Bridge is a running fake bridge.
type Bridge struct {
	qpc     *turbotunnel.QueuePacketConn
	ln      *kcp.Listener
	handler func(net.Conn)

	// Carriers counts carrier streams that sent a valid prologue.
	Carriers atomic.Int64

	mu       sync.Mutex
	sessions []io.Closer
	clients  map[turbotunnel.ClientID]int
	done     chan struct{}
}

// Start runs a bridge that passes each smux stream to handler (which must
// close it).
func Start(handler func(net.Conn)) (*Bridge, error) {
	qpc := turbotunnel.NewQueuePacketConn(addr("bridge"), time.Minute)
	ln, err := kcp.ServeConn(nil, 0, 0, qpc)
	if err != nil {
		qpc.Close()
		return nil, err
	}
	b := &Bridge{qpc: qpc, ln: ln, handler: handler, clients: map[turbotunnel.ClientID]int{}, done: make(chan struct{})}
	go b.acceptSessions()
	return b, nil
}

// Close stops the bridge.
func (b *Bridge) Close() {
	select {
	case <-b.done:
		return
	default:
	}
	close(b.done)
	b.ln.Close()
	b.qpc.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sessions {
		s.Close()
	}
}

// Clients returns how many carriers each ClientID used.
func (b *Bridge) Clients() map[turbotunnel.ClientID]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[turbotunnel.ClientID]int, len(b.clients))
	for k, v := range b.clients {
		out[k] = v
	}
	return out
}

func (b *Bridge) acceptSessions() {
	for {
		conn, err := b.ln.AcceptKCP()
		if err != nil {
			return
		}
		conn.SetStreamMode(true)
		conn.SetWindowSize(65535, 65535)
		conn.SetNoDelay(0, 0, 0, 1)
		cfg := smux.DefaultConfig()
		cfg.Version = 2
		cfg.KeepAliveTimeout = 4 * time.Minute
		cfg.MaxStreamBuffer = 1 << 20
		sess, err := smux.Server(conn, cfg)
		if err != nil {
			conn.Close()
			continue
		}
		b.mu.Lock()
		b.sessions = append(b.sessions, sess, conn)
		b.mu.Unlock()
		go func() {
			for {
				st, err := sess.AcceptStream()
				if err != nil {
					return
				}
				go b.handler(st)
			}
		}()
	}
}

// ErrBadToken is a carrier that did not start with the turbotunnel token.
var ErrBadToken = errors.New("fakebridge: bad turbotunnel token")

// ServeCarrier runs one carrier stream until it fails; it closes conn.
// An EOF before the token (an idle proxy) returns nil.
func (b *Bridge) ServeCarrier(conn net.Conn) error {
	defer conn.Close()
	br := bufio.NewReader(conn)
	var hdr [16]byte
	if _, err := io.ReadFull(br, hdr[:8]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	if [8]byte(hdr[:8]) != turbotunnel.Token {
		return ErrBadToken
	}
	if _, err := io.ReadFull(br, hdr[8:]); err != nil {
		return fmt.Errorf("fakebridge: reading ClientID: %w", err)
	}
	id := turbotunnel.ClientID(hdr[8:])
	b.Carriers.Add(1)
	b.mu.Lock()
	b.clients[id]++
	b.mu.Unlock()

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		out := b.qpc.OutgoingQueue(id)
		for {
			select {
			case <-stop:
				return
			case <-b.done:
				conn.Close()
				return
			case p, ok := <-out:
				if !ok {
					return
				}
				_, err := encapsulation.WriteData(conn, p)
				b.qpc.Restore(p)
				if err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	buf := make([]byte, 2048)
	for {
		n, err := encapsulation.ReadData(br, buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		b.qpc.QueueIncoming(buf[:n], id)
	}
}

type addr string

func (a addr) Network() string { return "fake" }
func (a addr) String() string  { return string(a) }
