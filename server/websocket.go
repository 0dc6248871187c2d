package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

// MaxChunkLen is the longest data chunk accepted from a client. Clients keep
// KCP packets within turbotunnel.MaxPacketSize (PROTOCOL.md §6.2); a longer
// chunk means a broken or hostile peer, and its connection is closed.
const MaxChunkLen = turbotunnel.MaxPacketSize

// readBufferSize is the buffered reader per WebSocket: enough for a few
// maximum-size chunks per read call.
const readBufferSize = 4096

// Errors that end a WebSocket; the log line names them.
var (
	errNoPrologue     = errors.New("closed before the prologue")
	errBadToken       = errors.New("wrong turbotunnel token")
	errShortPrologue  = errors.New("truncated prologue")
	errOversizedChunk = fmt.Errorf("chunk longer than %d bytes", MaxChunkLen)
	errMalformedChunk = errors.New("malformed chunk")
	errTruncatedChunk = errors.New("stream ended inside a chunk")
)

// ServeHTTP upgrades any request to a WebSocket and serves the turbotunnel
// on it. Requests beyond Config.MaxWebSockets get 503.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := s.webSockets.Add(1); n > int64(s.cfg.MaxWebSockets) {
		s.webSockets.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		s.logger.Debug("refusing WebSocket: limit reached", "limit", s.cfg.MaxWebSockets)
		return
	}
	defer s.webSockets.Add(-1)

	clientIP := ParseClientIP(r.URL.Query().Get("client_ip"))
	conn, err := websocketconn.Accept(w, r)
	if err != nil {
		s.logger.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// Server.Close ends every WebSocket.
	stop := context.AfterFunc(s.ctx, func() { conn.Close() })
	defer stop()
	err = s.serveWebSocket(conn, clientIP)
	conn.Close()
	switch {
	case err == nil, errors.Is(err, errNoPrologue):
		// Ordinary end; proxies open connections they never use.
	case errors.Is(err, errBadToken), errors.Is(err, errShortPrologue),
		errors.Is(err, errOversizedChunk), errors.Is(err, errMalformedChunk):
		s.logger.Info("closed WebSocket", "remote", r.RemoteAddr, "err", err)
	default:
		s.logger.Debug("WebSocket ended", "remote", r.RemoteAddr, "err", err)
	}
}

// idleReader sets a read deadline before each read of the underlying
// conn, so a peer that goes silent is dropped.
type idleReader struct {
	conn    net.Conn
	timeout time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
		return 0, err
	}
	return r.conn.Read(p)
}

// readPrologue reads the token and ClientID that start every carrier stream
// (PROTOCOL.md §6.1).
func readPrologue(r io.Reader) (turbotunnel.ClientID, error) {
	var buf [len(turbotunnel.Token) + len(turbotunnel.ClientID{})]byte
	n, err := io.ReadFull(r, buf[:len(turbotunnel.Token)])
	switch {
	case err == io.EOF:
		return turbotunnel.ClientID{}, errNoPrologue
	case err == io.ErrUnexpectedEOF:
		return turbotunnel.ClientID{}, errShortPrologue
	case err != nil:
		return turbotunnel.ClientID{}, fmt.Errorf("reading prologue: %w", err)
	}
	if [8]byte(buf[:n]) != turbotunnel.Token {
		return turbotunnel.ClientID{}, errBadToken
	}
	if _, err := io.ReadFull(r, buf[n:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return turbotunnel.ClientID{}, errShortPrologue
		}
		return turbotunnel.ClientID{}, fmt.Errorf("reading prologue: %w", err)
	}
	return turbotunnel.ClientID(buf[n:]), nil
}

// serveWebSocket runs the turbotunnel on one carrier connection until
// either direction fails.
func (s *Server) serveWebSocket(conn net.Conn, clientIP netip.Addr) error {
	br := bufio.NewReaderSize(idleReader{conn, s.cfg.IdleTimeout}, readBufferSize)
	id, err := readPrologue(br)
	if err != nil {
		return err
	}
	if clientIP.IsValid() {
		s.clientIDs.Set(id, clientIP)
	}
	pconn := s.instances[instanceIndex(id, len(s.instances))].pconn

	done := make(chan struct{})
	downErr := make(chan error, 1)
	go func() {
		downErr <- s.pumpDown(conn, pconn, id, done)
	}()
	err = pumpUp(br, pconn, id)
	close(done)
	// Closing the conn unblocks a downstream write in progress.
	conn.Close()
	if derr := <-downErr; err == nil || errors.Is(err, net.ErrClosed) {
		err = derr
	}
	return err
}

// pumpUp moves packets from the client into the KCP engine. It returns nil
// at a clean end of stream.
func pumpUp(r io.Reader, pconn *turbotunnel.QueuePacketConn, id turbotunnel.ClientID) error {
	buf := make([]byte, MaxChunkLen)
	// Converted once: a ClientID in an interface costs an allocation.
	var addr net.Addr = id
	for {
		n, err := encapsulation.ReadData(r, buf)
		switch {
		case err == nil:
			pconn.QueueIncoming(buf[:n], addr)
		case err == io.EOF:
			return nil
		case errors.Is(err, io.ErrShortBuffer):
			return errOversizedChunk
		case errors.Is(err, encapsulation.ErrTooLong):
			return errMalformedChunk
		case err == io.ErrUnexpectedEOF:
			return errTruncatedChunk
		default:
			return err
		}
	}
}

// pumpDown moves packets KCP wrote for id to the client until done closes or
// a write fails. Each write has a deadline, so a peer that stops reading
// costs at most one queue and one write buffer, for a bounded time.
func (s *Server) pumpDown(conn net.Conn, pconn *turbotunnel.QueuePacketConn, id turbotunnel.ClientID, done <-chan struct{}) error {
	q := pconn.OutgoingQueue(id)
	buf := make([]byte, 0, turbotunnel.MaxBatchSize)
	for {
		select {
		case <-done:
			return nil
		case p := <-q:
			buf = pconn.AppendBatch(buf[:0], p, q)
			if err := conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil {
				return err
			}
			if _, err := conn.Write(buf); err != nil {
				return fmt.Errorf("writing to WebSocket: %w", err)
			}
		}
	}
}
