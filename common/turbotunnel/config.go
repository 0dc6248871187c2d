package turbotunnel

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"
	"github.com/xtaci/smux"
)

// Config holds the KCP and smux parameters of a session. Both ends take
// theirs from ClientConfig or BridgeConfig so that the values of
// PROTOCOL.md §6.3 and §6.4 are written down once; the bridge may then
// tighten the limits it offers to unauthenticated clients.
type Config struct {
	// SendWindow and RecvWindow are KCP's windows, in packets. A peer can
	// make us buffer up to RecvWindow out-of-order packets (MTU bytes
	// each), so the bridge may want this lower than the reference's 65535.
	SendWindow, RecvWindow int
	// MTU is KCP's packet size; at most MaxPacketSize.
	MTU int
	// KeepAliveInterval and KeepAliveTimeout are smux's: a NOP every
	// interval, and the session ends when nothing arrives for the timeout.
	KeepAliveInterval, KeepAliveTimeout time.Duration
	// MaxReceiveBuffer bounds the bytes smux buffers for all streams of a
	// session; MaxStreamBuffer those of one stream (its flow-control
	// window); MaxFrameSize the largest smux frame.
	MaxReceiveBuffer, MaxStreamBuffer, MaxFrameSize int
	// AcceptBacklog and ShaperQueueSize size two channels smux allocates
	// per session (0: smux's default, 1024 entries each, about 65 KB).
	// The bridge caps streams per session and accepts them at once, and a
	// full shaper queue only makes writers wait, so it uses small ones.
	AcceptBacklog, ShaperQueueSize int
	// MaxStreams bounds the streams one session may have open at once on
	// the accepting side; beyond it new streams are refused (closed). 0
	// means no limit.
	MaxStreams int
}

// Reference values (PROTOCOL.md §6.3, §6.4).
const (
	refWindow           = 65535
	refKeepAlive        = 10 * time.Second
	refClientKATimeout  = 10 * time.Minute
	refBridgeKATimeout  = 4 * time.Minute
	refMaxReceiveBuffer = 4 << 20
	refMaxStreamBuffer  = 1 << 20
	refMaxFrameSize     = 32768
)

// ClientConfig returns the client's parameters, those of Tor's client.
func ClientConfig() Config {
	return Config{
		SendWindow:        refWindow,
		RecvWindow:        refWindow,
		MTU:               MaxPacketSize,
		KeepAliveInterval: refKeepAlive,
		KeepAliveTimeout:  refClientKATimeout,
		MaxReceiveBuffer:  refMaxReceiveBuffer,
		MaxStreamBuffer:   refMaxStreamBuffer,
		MaxFrameSize:      refMaxFrameSize,
	}
}

// DefaultMaxStreams bounds the streams of one session at the bridge. Tor
// keeps one connection per bridge, so even a client that shares one
// session among all its SOCKS connections rarely has more than a few.
const DefaultMaxStreams = 256

// BridgeConfig returns the bridge's parameters: those of Tor's bridge, and
// at most DefaultMaxStreams streams per session.
func BridgeConfig() Config {
	c := ClientConfig()
	c.KeepAliveTimeout = refBridgeKATimeout
	c.MaxStreams = DefaultMaxStreams
	c.AcceptBacklog = 32
	c.ShaperQueueSize = 128
	return c
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("turbotunnel: invalid session config")

// Validate checks c, smux's constraints included.
func (c Config) Validate() error {
	if c.SendWindow < 1 || c.RecvWindow < 1 || c.SendWindow > 65535 || c.RecvWindow > 65535 {
		return fmt.Errorf("%w: KCP windows %d/%d outside 1..65535", ErrConfig, c.SendWindow, c.RecvWindow)
	}
	if c.MTU < 50 || c.MTU > MaxPacketSize {
		return fmt.Errorf("%w: MTU %d outside 50..%d", ErrConfig, c.MTU, MaxPacketSize)
	}
	if c.MaxStreams < 0 || c.AcceptBacklog < 0 || c.ShaperQueueSize < 0 {
		return fmt.Errorf("%w: negative MaxStreams, AcceptBacklog or ShaperQueueSize", ErrConfig)
	}
	if err := smux.VerifyConfig(c.smux()); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func (c Config) smux() *smux.Config {
	s := smux.DefaultConfig()
	s.Version = 2
	s.KeepAliveInterval = c.KeepAliveInterval
	s.KeepAliveTimeout = c.KeepAliveTimeout
	s.MaxFrameSize = c.MaxFrameSize
	s.MaxReceiveBuffer = c.MaxReceiveBuffer
	s.MaxStreamBuffer = c.MaxStreamBuffer
	if c.AcceptBacklog > 0 {
		s.AcceptBacklog = c.AcceptBacklog
	}
	if c.ShaperQueueSize > 0 {
		s.ShaperQueueSize = c.ShaperQueueSize
	}
	return s
}

// SmuxConfig returns smux's configuration for c, checked.
func (c Config) SmuxConfig() (*smux.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.smux(), nil
}

// ConfigureKCP applies c to a KCP session: stream mode, windows, MTU, and
// the reference's timing (no nodelay, 10 ms interval, no fast resend, no
// congestion window).
func (c Config) ConfigureKCP(conn *kcp.UDPSession) {
	conn.SetStreamMode(true)
	conn.SetWindowSize(c.SendWindow, c.RecvWindow)
	conn.SetNoDelay(0, 0, 0, 1)
	conn.SetMtu(c.MTU)
}

// Session is a KCP connection and the smux session over it.
type Session struct {
	KCP        *kcp.UDPSession
	Mux        *smux.Session
	maxStreams int
	counted    *countingConn // server sessions only
}

// smuxHeaderSize is the length of an smux frame header (PROTOCOL.md §6.4).
const smuxHeaderSize = 8

// countingConn is a KCP connection as smux's server end sees it; it notes
// when smux has read a whole frame header, the first thing smux checks.
type countingConn struct {
	*kcp.UDPSession
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.UDPSession.Read(p)
	if n > 0 && c.read.Load() < smuxHeaderSize {
		c.read.Add(int64(n))
	}
	return n, err
}

// FrameSeen reports whether the peer of a server session has sent at
// least one whole smux frame header. The bridge closes sessions that bring
// none in time: they are litter, or an attack, and would otherwise last
// until smux's keep-alive timeout.
func (s *Session) FrameSeen() bool {
	return s.counted != nil && s.counted.read.Load() >= smuxHeaderSize
}

// ErrTooManyStreams is returned by AcceptStream for a stream refused
// because the session already has Config.MaxStreams open.
var ErrTooManyStreams = errors.New("turbotunnel: too many streams in one session")

// AcceptStream returns the next stream the peer opened. A stream beyond
// Config.MaxStreams is closed at once and reported with ErrTooManyStreams
// (the session itself stays usable; the caller logs it and goes on).
func (s *Session) AcceptStream() (*smux.Stream, error) {
	st, err := s.Mux.AcceptStream()
	if err != nil {
		return nil, err
	}
	if s.maxStreams > 0 && s.Mux.NumStreams() > s.maxStreams {
		st.Close()
		return nil, fmt.Errorf("%w (limit %d)", ErrTooManyStreams, s.maxStreams)
	}
	return st, nil
}

// Close closes the smux session and the KCP connection.
func (s *Session) Close() error {
	err := s.Mux.Close()
	s.KCP.Close()
	return err
}

// NewClientSession starts the client end of a session over pconn (usually
// a CarrierConn), addressed to remote.
func NewClientSession(pconn net.PacketConn, remote net.Addr, c Config) (*Session, error) {
	scfg, err := c.SmuxConfig()
	if err != nil {
		return nil, err
	}
	kconn, err := kcp.NewConn2(remote, nil, 0, 0, pconn)
	if err != nil {
		return nil, fmt.Errorf("turbotunnel: starting KCP: %w", err)
	}
	c.ConfigureKCP(kconn)
	mux, err := smux.Client(kconn, scfg)
	if err != nil {
		kconn.Close()
		return nil, fmt.Errorf("turbotunnel: starting smux: %w", err)
	}
	return &Session{KCP: kconn, Mux: mux}, nil
}

// NewServerSession configures a KCP connection accepted by the bridge
// (kcp.Listener.AcceptKCP) and starts smux's server end over it. On error
// conn is closed.
func NewServerSession(conn *kcp.UDPSession, c Config) (*Session, error) {
	scfg, err := c.SmuxConfig()
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.ConfigureKCP(conn)
	cc := &countingConn{UDPSession: conn}
	mux, err := smux.Server(cc, scfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("turbotunnel: starting smux: %w", err)
	}
	return &Session{KCP: conn, Mux: mux, maxStreams: c.MaxStreams, counted: cc}, nil
}

// Listen starts a KCP engine reading from pconn (a QueuePacketConn):
// packets are bare KCP segments, with no encryption and no FEC.
func Listen(pconn net.PacketConn) (*kcp.Listener, error) {
	ln, err := kcp.ServeConn(nil, 0, 0, pconn)
	if err != nil {
		return nil, fmt.Errorf("turbotunnel: starting KCP engine: %w", err)
	}
	return ln, nil
}
