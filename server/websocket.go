package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
	"github.com/snowfall-pt/snowfall/server/carrier"
)

// MaxChunkLen is the longest data chunk accepted from a client.
const MaxChunkLen = carrier.MaxChunkLen

// readBufferSize is the buffered reader per WebSocket: enough for a few
// maximum-size chunks per read call.
const readBufferSize = 4096

// errSessionLimit ends a WebSocket whose new ClientID would exceed a
// session limit.
var errSessionLimit = errors.New("session limit reached")

// ServeHTTP upgrades any request to a WebSocket and serves the turbotunnel
// on it. When the WebSocket slots (Config.MaxWebSockets, or
// MaxWebSocketsPerSource for the request's source) are taken, a
// connection without a prologue or long idle is evicted to make room; if
// there is none, the request gets 503.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src := sourceKey(r.RemoteAddr)
	slot, result := s.slots.acquire(src, time.Now())
	switch result {
	case slotFull, slotSourceFull:
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		if result == slotFull {
			s.limits.reached("max-websockets", s.cfg.MaxWebSockets)
		} else {
			s.limits.reached("max-websockets-per-source", s.cfg.MaxWebSocketsPerSource)
		}
		return
	case slotEvicted:
		s.limits.reached("websocket-eviction", s.cfg.MaxWebSockets, "note", "evicted an idle or pre-prologue WebSocket")
	}
	defer s.slots.release(slot)

	clientIP := ParseClientIP(r.URL.Query().Get("client_ip"))
	conn, err := websocketconn.Accept(w, r)
	if err != nil {
		s.logger.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	if !s.slots.attach(slot, conn) {
		conn.Close()
		return
	}
	// Server.Close ends every WebSocket.
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	err = s.serveWebSocket(conn, slot, clientIP)
	conn.Close()
	switch {
	case err == nil, errors.Is(err, carrier.ErrNoPrologue):
		// Ordinary end; proxies open connections they never use.
	case errors.Is(err, carrier.ErrBadToken), errors.Is(err, carrier.ErrShortPrologue),
		errors.Is(err, carrier.ErrOversizedChunk), errors.Is(err, carrier.ErrMalformedChunk):
		s.logger.Info("closed WebSocket", "remote", r.RemoteAddr, "err", err)
	default:
		s.logger.Debug("WebSocket ended", "remote", r.RemoteAddr, "err", err)
	}
}

// carrierReader sets the read deadline before each read of the underlying
// conn: the prologue must arrive within prologue of the request, and after
// it a data chunk within idle of the last one. Padding does not count, so
// a peer that trickles padding to hold its slot is dropped all the same.
type carrierReader struct {
	conn           net.Conn
	slot           *slot
	prologue, idle time.Duration
}

func (r carrierReader) Read(p []byte) (int, error) {
	var deadline time.Time
	if d := r.slot.data.Load(); d == 0 {
		deadline = time.Unix(0, r.slot.opened).Add(r.prologue)
	} else {
		deadline = time.Unix(0, d).Add(r.idle)
	}
	if err := r.conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	return r.conn.Read(p)
}

// serveWebSocket runs the turbotunnel on one carrier connection until
// either direction fails.
func (s *Server) serveWebSocket(conn net.Conn, slot *slot, clientIP netip.Addr) error {
	br := bufio.NewReaderSize(carrierReader{conn, slot, s.cfg.PrologueTimeout, s.cfg.IdleTimeout}, readBufferSize)
	id, err := carrier.ReadPrologue(br)
	if err != nil {
		return err
	}
	slot.touch(time.Now())
	switch s.sessions.admit(id, slot.src) {
	case admitTotal:
		s.limits.reached("max-sessions", s.cfg.MaxSessions)
		return errSessionLimit
	case admitSource:
		s.limits.reached("max-sessions-per-source", s.cfg.MaxSessionsPerSource)
		return errSessionLimit
	}
	defer s.sessions.leave(id)
	if clientIP.IsValid() {
		s.clientIDs.Set(id, clientIP)
	}
	inst := s.instances[instanceIndex(id, len(s.instances))]
	in := inst.in.NewInlet(id)
	defer in.Close()

	done := make(chan struct{})
	downErr := make(chan error, 1)
	go func() {
		downErr <- s.pumpDown(conn, inst.pconn, id, done)
	}()
	err = carrier.Pump(br, in, &slot.data, func() {
		s.limits.reached("carrier-queue", s.cfg.CarrierQueue, "note", "a WebSocket sends faster than its share of the KCP engine; packets dropped")
	})
	close(done)
	// Closing the conn unblocks a downstream write in progress.
	conn.Close()
	if derr := <-downErr; err == nil || errors.Is(err, net.ErrClosed) {
		err = derr
	}
	return err
}

// pumpDown moves packets KCP wrote for id to the client until done closes or
// a write fails. Each write has a deadline, so a peer that stops reading
// costs at most one queue and one write buffer, for a bounded time.
func (s *Server) pumpDown(conn net.Conn, pconn *turbotunnel.QueuePacketConn, id turbotunnel.ClientID, done <-chan struct{}) error {
	q := pconn.OutgoingQueue(id)
	for {
		select {
		case <-done:
			return nil
		case p := <-q:
			// The batch buffer is borrowed only while writing: an idle
			// WebSocket then holds none of its 16 KiB.
			batch := batchPool.Get().(*[turbotunnel.MaxBatchSize]byte)
			buf := pconn.AppendBatch(batch[:0], p, q)
			err := conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err == nil {
				_, err = conn.Write(buf)
				if err != nil {
					err = fmt.Errorf("writing to WebSocket: %w", err)
				}
			}
			batchPool.Put(batch)
			if err != nil {
				return err
			}
		}
	}
}

var batchPool = sync.Pool{New: func() any { return new([turbotunnel.MaxBatchSize]byte) }}
