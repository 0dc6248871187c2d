package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/xtaci/kcp-go/v5"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/turbotunnel/carrier"
)

// sessionConfig is the bridge's session layer: turbotunnel's bridge
// parameters (PROTOCOL.md §6.3, §6.4) with the bounds of c applied. The KCP
// window is smaller than the reference's 65535 because it bounds what a
// peer can make the bridge hold (see DefaultKCPWindow).
func (c *Config) sessionConfig() turbotunnel.Config {
	sc := turbotunnel.BridgeConfig()
	sc.SendWindow, sc.RecvWindow = c.KCPWindow, c.KCPWindow
	sc.MaxStreams = c.MaxStreamsPerSession
	return sc
}

// instanceAddr is the local address of a KCP engine's packet conn.
type instanceAddr int

func (a instanceAddr) Network() string { return "turbotunnel" }
func (a instanceAddr) String() string  { return fmt.Sprintf("turbotunnel-%d", int(a)) }

// kcpInstance is one KCP engine: the KCP listener, reading packets from
// the fair intake its WebSockets feed, and writing them into the
// per-ClientID queues of pconn, which the WebSockets drain.
type kcpInstance struct {
	pconn *turbotunnel.QueuePacketConn
	in    *carrier.Intake
	ln    *kcp.Listener
}

func newKCPInstance(i int, queueTimeout time.Duration, perCarrier, total int) (*kcpInstance, error) {
	pconn := turbotunnel.NewQueuePacketConn(instanceAddr(i), queueTimeout)
	in := carrier.NewIntake(perCarrier, total)
	ln, err := turbotunnel.Listen(&carrier.EngineConn{QueuePacketConn: pconn, In: in})
	if err != nil {
		in.Close()
		pconn.Close()
		return nil, fmt.Errorf("server: KCP engine %d: %w", i, err)
	}
	return &kcpInstance{pconn: pconn, in: in, ln: ln}, nil
}

func (inst *kcpInstance) close() {
	inst.ln.Close()
	inst.in.Close()
	inst.pconn.Close()
}

// instanceIndex picks the KCP engine for a ClientID: its bytes as a
// little-endian integer, modulo the number of engines, as the reference.
func instanceIndex(id turbotunnel.ClientID, n int) int {
	return int(binary.LittleEndian.Uint64(id[:]) % uint64(n))
}

// acceptSessions accepts KCP sessions from one engine until it closes.
func (s *Server) acceptSessions(inst *kcpInstance) {
	defer s.wg.Done()
	for {
		conn, err := inst.ln.AcceptKCP()
		if err != nil {
			if s.ctx.Err() == nil {
				s.logger.Error("KCP engine stopped", "err", err)
			}
			return
		}
		id, ok := conn.RemoteAddr().(turbotunnel.ClientID)
		if !ok {
			s.logger.Error("KCP session from an unexpected address type", "addr", conn.RemoteAddr())
			conn.Close()
			continue
		}
		if !s.sessions.started(id) {
			s.limits.reached("max-sessions", s.cfg.MaxSessions)
			conn.Close()
			continue
		}
		sess, err := turbotunnel.NewServerSession(conn, s.session)
		if err != nil {
			s.logger.Error("starting session", "err", err)
			s.sessions.ended(id)
			continue
		}
		s.wg.Add(1)
		go s.serveSession(sess, id)
	}
}

// serveSession passes the streams of one session on.
func (s *Server) serveSession(sess *turbotunnel.Session, id turbotunnel.ClientID) {
	defer s.wg.Done()
	defer s.sessions.ended(id)
	defer sess.Close()
	// The address credited to the session is the newest one known now.
	addr := userAddr(s.clientIDs.Get(id))
	s.sessMu.Lock()
	if s.ctx.Err() != nil {
		s.sessMu.Unlock()
		return
	}
	s.smuxSessions[sess] = struct{}{}
	s.sessMu.Unlock()
	defer func() {
		s.sessMu.Lock()
		delete(s.smuxSessions, sess)
		s.sessMu.Unlock()
	}()
	// A session that brings no smux frame in time is somebody's litter
	// (or an attack): without this it would last until smux's keep-alive
	// timeout, minutes later. smux itself closes the session on a frame
	// it cannot parse.
	firstFrame := time.AfterFunc(s.cfg.FirstFrameTimeout, func() {
		if !sess.FrameSeen() {
			s.limits.reached("first-frame-timeout", int(s.cfg.FirstFrameTimeout/time.Second), "note", "closed a KCP session that sent no smux frame")
			sess.Close()
		}
	})
	defer firstFrame.Stop()
	s.logger.Debug("session opened", "clientid", id.String())
	for {
		stream, err := sess.AcceptStream()
		if errors.Is(err, turbotunnel.ErrTooManyStreams) {
			s.limits.reached("max-streams-per-session", s.cfg.MaxStreamsPerSession)
			continue
		}
		if err != nil {
			s.logger.Debug("session ended", "clientid", id.String(), "err", err)
			return
		}
		s.stats.count(addr != "")
		c := &Conn{Stream: stream, ClientID: id, ClientAddr: addr}
		select {
		case s.conns <- c:
		case <-s.ctx.Done():
			stream.Close()
			return
		}
	}
}
