package server

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// KCP and smux parameters of the reference bridge (PROTOCOL.md §6.3, §6.4).
const (
	kcpWindow           = 65535
	smuxVersion         = 2
	smuxKeepAlive       = 4 * time.Minute
	smuxMaxStreamBuffer = 1048576
)

// smuxConfig returns the bridge's smux configuration, checked by smux.
func smuxConfig() (*smux.Config, error) {
	c := smux.DefaultConfig()
	c.Version = smuxVersion
	c.KeepAliveTimeout = smuxKeepAlive
	c.MaxStreamBuffer = smuxMaxStreamBuffer
	if err := smux.VerifyConfig(c); err != nil {
		return nil, fmt.Errorf("server: smux config: %w", err)
	}
	return c, nil
}

// instanceAddr is the local address of a KCP engine's packet conn.
type instanceAddr int

func (a instanceAddr) Network() string { return "turbotunnel" }
func (a instanceAddr) String() string  { return fmt.Sprintf("turbotunnel-%d", int(a)) }

// kcpInstance is one KCP engine: a packet conn fed by WebSockets and the KCP
// listener reading from it.
type kcpInstance struct {
	pconn *turbotunnel.QueuePacketConn
	ln    *kcp.Listener
}

func newKCPInstance(i int, queueTimeout time.Duration) (*kcpInstance, error) {
	pconn := turbotunnel.NewQueuePacketConn(instanceAddr(i), queueTimeout)
	// No encryption, no FEC: packets are bare KCP segments.
	ln, err := kcp.ServeConn(nil, 0, 0, pconn)
	if err != nil {
		pconn.Close()
		return nil, fmt.Errorf("server: starting KCP engine %d: %w", i, err)
	}
	return &kcpInstance{pconn: pconn, ln: ln}, nil
}

func (inst *kcpInstance) close() {
	inst.ln.Close()
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
		conn.SetStreamMode(true)
		conn.SetWindowSize(kcpWindow, kcpWindow)
		conn.SetNoDelay(0, 0, 0, 1)
		conn.SetMtu(turbotunnel.MaxPacketSize)
		s.wg.Add(1)
		go s.serveSession(conn)
	}
}

// serveSession runs smux over one KCP session and passes its streams on.
func (s *Server) serveSession(conn *kcp.UDPSession) {
	defer s.wg.Done()
	defer conn.Close()
	id, ok := conn.RemoteAddr().(turbotunnel.ClientID)
	if !ok {
		s.logger.Error("KCP session from an unexpected address type", "addr", conn.RemoteAddr())
		return
	}
	// The address credited to the session is the newest one known now.
	addr := userAddr(s.clientIDs.Get(id))
	cfg, err := smuxConfig()
	if err != nil {
		s.logger.Error("smux", "err", err)
		return
	}
	sess, err := smux.Server(conn, cfg)
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
	s.sessions[sess] = struct{}{}
	s.sessMu.Unlock()
	defer func() {
		s.sessMu.Lock()
		delete(s.sessions, sess)
		s.sessMu.Unlock()
		sess.Close()
	}()
	s.logger.Debug("session opened", "clientid", id.String())
	for {
		stream, err := sess.AcceptStream()
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
