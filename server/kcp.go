package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/server/carrier"
)

// KCP and smux parameters of the reference bridge (PROTOCOL.md §6.3, §6.4).
// The KCP window is not among them: it is Config.KCPWindow, smaller than
// the reference's 65535 because it bounds what a peer can make the bridge
// hold (see DefaultKCPWindow).
const (
	smuxVersion         = 2
	smuxKeepAlive       = 4 * time.Minute
	smuxMaxStreamBuffer = 1048576
	// smuxAcceptBacklog and smuxShaperQueue size two channels smux
	// allocates per session (1024 entries each by default, about 65 KB).
	// Streams are capped per session and accepted at once, and a full
	// shaper queue only makes writers wait, so small ones do.
	smuxAcceptBacklog = 32
	smuxShaperQueue   = 128
)

// smuxConfig returns the bridge's smux configuration, checked by smux.
func smuxConfig() (*smux.Config, error) {
	c := smux.DefaultConfig()
	c.Version = smuxVersion
	c.KeepAliveTimeout = smuxKeepAlive
	c.MaxStreamBuffer = smuxMaxStreamBuffer
	c.AcceptBacklog = smuxAcceptBacklog
	c.ShaperQueueSize = smuxShaperQueue
	if err := smux.VerifyConfig(c); err != nil {
		return nil, fmt.Errorf("server: smux config: %w", err)
	}
	return c, nil
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
	// No encryption, no FEC: packets are bare KCP segments.
	ln, err := kcp.ServeConn(nil, 0, 0, &engineConn{QueuePacketConn: pconn, in: in})
	if err != nil {
		in.Close()
		pconn.Close()
		return nil, fmt.Errorf("server: starting KCP engine %d: %w", i, err)
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
		conn.SetStreamMode(true)
		conn.SetWindowSize(s.cfg.KCPWindow, s.cfg.KCPWindow)
		conn.SetNoDelay(0, 0, 0, 1)
		conn.SetMtu(turbotunnel.MaxPacketSize)
		s.wg.Add(1)
		go s.serveSession(conn, id)
	}
}

// firstFrameConn is a KCP session as smux sees it; it notes when smux has
// read a whole frame header, which smux checks before anything else.
type firstFrameConn struct {
	*kcp.UDPSession
	read atomic.Int64
}

// smuxHeaderSize is the length of an smux frame header (PROTOCOL.md §6.4).
const smuxHeaderSize = 8

func (c *firstFrameConn) Read(p []byte) (int, error) {
	n, err := c.UDPSession.Read(p)
	if n > 0 && c.read.Load() < smuxHeaderSize {
		c.read.Add(int64(n))
	}
	return n, err
}

// serveSession runs smux over one KCP session and passes its streams on.
func (s *Server) serveSession(conn *kcp.UDPSession, id turbotunnel.ClientID) {
	defer s.wg.Done()
	defer s.sessions.ended(id)
	defer conn.Close()
	// The address credited to the session is the newest one known now.
	addr := userAddr(s.clientIDs.Get(id))
	cfg, err := smuxConfig()
	if err != nil {
		s.logger.Error("smux", "err", err)
		return
	}
	fc := &firstFrameConn{UDPSession: conn}
	sess, err := smux.Server(fc, cfg)
	if err != nil {
		s.logger.Error("smux", "err", err)
		return
	}
	s.sessMu.Lock()
	if s.ctx.Err() != nil {
		s.sessMu.Unlock()
		sess.Close()
		return
	}
	s.smuxSessions[sess] = struct{}{}
	s.sessMu.Unlock()
	defer func() {
		s.sessMu.Lock()
		delete(s.smuxSessions, sess)
		s.sessMu.Unlock()
		sess.Close()
	}()
	// A session that brings no smux frame in time is somebody's litter
	// (or an attack): without this it would last until smux's keep-alive
	// timeout, minutes later. smux itself closes the session on a frame
	// it cannot parse.
	firstFrame := time.AfterFunc(s.cfg.FirstFrameTimeout, func() {
		if fc.read.Load() < smuxHeaderSize {
			s.limits.reached("first-frame-timeout", int(s.cfg.FirstFrameTimeout/time.Second), "note", "closed a KCP session that sent no smux frame")
			sess.Close()
		}
	})
	defer firstFrame.Stop()
	s.logger.Debug("session opened", "clientid", id.String())
	for {
		stream, err := sess.AcceptStream()
		if err != nil {
			s.logger.Debug("session ended", "clientid", id.String(), "err", err)
			return
		}
		// NumStreams counts this stream too.
		if n := sess.NumStreams(); n > s.cfg.MaxStreamsPerSession {
			s.limits.reached("max-streams-per-session", s.cfg.MaxStreamsPerSession)
			stream.Close()
			continue
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

// engineConn is the net.PacketConn a KCP engine runs on: reads come from
// the fair intake, writes go to the per-ClientID queues of the
// QueuePacketConn that the WebSockets drain.
type engineConn struct {
	*turbotunnel.QueuePacketConn
	in *carrier.Intake
}

func (c *engineConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.in.Read(p)
	if err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: "turbotunnel", Source: c.LocalAddr(), Err: err}
	}
	return n, addr, nil
}

func (c *engineConn) Close() error {
	c.in.Close()
	return c.QueuePacketConn.Close()
}

// Deadlines are not supported, as on QueuePacketConn.
func (c *engineConn) SetReadDeadline(time.Time) error { return nil }
