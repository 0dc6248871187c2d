// Package fakebridge is an in-process stand-in for a Snowflake bridge, for
// client tests: it accepts carrier streams (what a proxy would relay),
// checks the turbotunnel prologue, demultiplexes packets by ClientID into a
// KCP listener, and hands every smux stream to a handler.
package fakebridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"

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
	ctx      context.Context // done when the bridge is closed
	cancel   context.CancelFunc
}

// Start runs a bridge that passes each smux stream to handler (which must
// close it).
func Start(handler func(net.Conn)) (*Bridge, error) {
	qpc := turbotunnel.NewQueuePacketConn(addr("bridge"), time.Minute)
	ln, err := turbotunnel.Listen(qpc)
	if err != nil {
		qpc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{qpc: qpc, ln: ln, handler: handler, clients: map[turbotunnel.ClientID]int{}, ctx: ctx, cancel: cancel}
	go b.acceptSessions()
	return b, nil
}

// Close stops the bridge.
func (b *Bridge) Close() {
	if b.ctx.Err() != nil {
		return
	}
	b.cancel()
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
		sess, err := turbotunnel.NewServerSession(conn, turbotunnel.BridgeConfig())
		if err != nil {
			continue
		}
		b.mu.Lock()
		b.sessions = append(b.sessions, sess)
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
var ErrBadToken = turbotunnel.ErrBadToken

// ServeCarrier runs one carrier stream until it fails; it closes conn.
// An EOF before the token (an idle proxy) returns nil.
func (b *Bridge) ServeCarrier(conn net.Conn) error {
	defer conn.Close()
	br := bufio.NewReader(conn)
	id, err := turbotunnel.ReadPrologue(br)
	if errors.Is(err, turbotunnel.ErrNoPrologue) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fakebridge: %w", err)
	}
	b.Carriers.Add(1)
	b.mu.Lock()
	b.clients[id]++
	b.mu.Unlock()
	stop := context.AfterFunc(b.ctx, func() { conn.Close() })
	defer stop()
	err = turbotunnel.ServeCarrier(conn, br, turbotunnel.QueueTo(b.qpc, id), b.qpc, id, 0)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type addr string

func (a addr) Network() string { return "fake" }
func (a addr) String() string  { return string(a) }
