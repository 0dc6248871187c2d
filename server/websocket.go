package server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/turbotunnel/carrier"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

// MaxChunkLen is the longest data chunk accepted from a client.
const MaxChunkLen = turbotunnel.MaxPacketSize

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
	case err == nil, errors.Is(err, turbotunnel.ErrNoPrologue):
		// Ordinary end; proxies open connections they never use.
	case errors.Is(err, turbotunnel.ErrBadToken), errors.Is(err, turbotunnel.ErrShortPrologue),
		errors.Is(err, turbotunnel.ErrOversizedChunk), errors.Is(err, turbotunnel.ErrMalformedChunk):
		s.logger.Info("closed WebSocket", "remote", r.RemoteAddr, "err", err)
	default:
		s.logger.Debug("WebSocket ended", "remote", r.RemoteAddr, "err", err)
	}
}

// serveWebSocket runs the turbotunnel on one carrier connection until
// either direction fails.
func (s *Server) serveWebSocket(conn net.Conn, slot *slot, clientIP netip.Addr) error {
	dr := carrier.DeadlineReader{
		Conn:     conn,
		Opened:   time.Unix(0, slot.opened),
		LastData: &slot.data,
		Prologue: s.cfg.PrologueTimeout,
		Idle:     s.cfg.IdleTimeout,
	}
	br := bufio.NewReaderSize(dr, readBufferSize)
	id, err := turbotunnel.ReadPrologue(br)
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

	queue := carrier.Queue(in, &slot.data, func() {
		s.limits.reached("carrier-queue", s.cfg.CarrierQueue, "note", "a WebSocket sends faster than its share of the KCP engine; packets dropped")
	})
	return turbotunnel.ServeCarrier(conn, br, queue, inst.pconn, id, s.cfg.WriteTimeout)
}
