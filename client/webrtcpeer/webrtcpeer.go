// Package webrtcpeer connects a Snowflake client to a proxy over a WebRTC
// data channel and presents the channel as a net.Conn carrying a byte stream
// (PROTOCOL.md §5).
//
// The client is always the offerer. Dial creates a peer connection with one
// ordered, reliable data channel labelled "snowflake-" plus 16 hex digits,
// waits for ICE gathering to finish (no trickle ICE, mDNS off), strips local
// host candidates unless asked not to, hands the offer to an ExchangeFunc
// (the broker rendezvous) and applies the answer. The returned Conn closes
// itself when the channel closes, when ICE fails or disconnects, or when no
// data arrives for the stale timeout.
package webrtcpeer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/sdpjson"
)

// Default timeouts (PROTOCOL.md §5.4).
const (
	// DataChannelTimeout bounds the wait for the channel to open once the
	// answer is applied.
	DataChannelTimeout = 10 * time.Second
	// StaleTimeout closes a channel on which nothing was received for
	// this long.
	StaleTimeout = 20 * time.Second
	// GatherTimeout bounds ICE gathering; the offer then carries whatever
	// was gathered.
	GatherTimeout = 15 * time.Second
)

// Write back-pressure: a Write blocks while more than highWater bytes wait
// in the channel's send buffer, until the buffer drains below lowWater.
const (
	highWater = 1 << 20
	lowWater  = 512 << 10
)

// maxMessage is the largest message this side sends (small enough for
// browser proxies) and readBufSize the largest it can receive (pion's SCTP
// limit).
const (
	maxMessage  = 16 << 10
	readBufSize = 64 << 10
)

// Errors, to be tested with errors.Is.
var (
	ErrNoCandidates = errors.New("answer has no candidates")
	ErrNotAnswer    = errors.New("remote description is not an answer")
	ErrOpenTimeout  = errors.New("timed out waiting for the data channel to open")
	ErrStale        = errors.New("no data received from the proxy for too long")
	ErrClosed       = errors.New("data channel closed")
)

// ExchangeFunc sends an offer (session-description JSON, package sdpjson)
// to a proxy through the broker and returns the proxy's answer.
type ExchangeFunc func(ctx context.Context, offer string) (answer string, err error)

// Config configures a Dialer.
type Config struct {
	// ICEServers are the STUN servers used to gather server-reflexive
	// candidates.
	ICEServers []webrtc.ICEServer
	// KeepLocalAddresses keeps host candidates with private, loopback or
	// unspecified addresses in the offer.
	KeepLocalAddresses bool
	// IncludeLoopback gathers loopback candidates. It exists for tests that
	// run client and proxy on one host; leave it off otherwise.
	IncludeLoopback bool
	// Net, when set, is the network pion uses for all ICE traffic (for
	// example UDP through a SOCKS5 proxy); only UDP over IPv4 is then used.
	Net transport.Net
	// GatherTimeout, OpenTimeout and StaleTimeout override the package
	// defaults when positive.
	GatherTimeout, OpenTimeout, StaleTimeout time.Duration
	// Logger receives debug output; nil discards it.
	Logger *slog.Logger
}

// Dialer opens data channels to proxies. Safe for concurrent use.
type Dialer struct {
	cfg Config
	api *webrtc.API
	log *slog.Logger
}

// NewDialer returns a Dialer for cfg.
func NewDialer(cfg Config) *Dialer {
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = GatherTimeout
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DataChannelTimeout
	}
	if cfg.StaleTimeout <= 0 {
		cfg.StaleTimeout = StaleTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return &Dialer{cfg: cfg, api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), log: log}
}

// Dial offers a data channel, exchanges the offer for an answer with
// exchange and waits for the channel to open.
func (d *Dialer) Dial(ctx context.Context, exchange ExchangeFunc) (*Conn, error) {
	pc, err := d.api.NewPeerConnection(webrtc.Configuration{ICEServers: d.cfg.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("creating peer connection: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			go pc.Close() // may take a moment; nobody waits for it
		}
	}()

	ordered := true
	dc, err := pc.CreateDataChannel(Label(), &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, fmt.Errorf("creating data channel: %w", err)
	}
	c := newConn(pc, dc, d.cfg.StaleTimeout, d.log)
	opened := make(chan datachannel.ReadWriteCloserDeadliner, 1)
	openErr := make(chan error, 1)
	dc.OnOpen(func() {
		rwc, err := dc.DetachWithDeadline()
		if err != nil {
			openErr <- err
			return
		}
		opened <- rwc
	})
	dc.OnClose(func() { c.closeWith(ErrClosed) })
	pcFailed := make(chan struct{})
	var failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		d.log.Debug("peer connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed,
			webrtc.PeerConnectionStateDisconnected:
			failOnce.Do(func() { close(pcFailed) })
			c.closeWith(fmt.Errorf("peer connection %s", s))
		}
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("creating offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("setting local description: %w", err)
	}
	gatherTimer := time.NewTimer(d.cfg.GatherTimeout)
	select {
	case <-gathered:
	case <-gatherTimer.C:
		d.log.Debug("ICE gathering timed out; offering the candidates gathered so far")
	case <-ctx.Done():
		gatherTimer.Stop()
		return nil, ctx.Err()
	}
	gatherTimer.Stop()

	local := *pc.LocalDescription()
	// Related addresses are hidden even when local candidates are kept:
	// they are the LAN address, and the proxy has no use for them.
	local.SDP = iceaddr.Redact(local.SDP, d.cfg.KeepLocalAddresses)
	offerJSON, err := sdpjson.Encode(&local)
	if err != nil {
		return nil, fmt.Errorf("encoding offer: %w", err)
	}
	answerJSON, err := exchange(ctx, offerJSON)
	if err != nil {
		return nil, err
	}
	answer, err := sdpjson.Decode(answerJSON)
	if err != nil {
		return nil, fmt.Errorf("decoding answer: %w", err)
	}
	if answer.Type != webrtc.SDPTypeAnswer {
		return nil, fmt.Errorf("%w (type %s)", ErrNotAnswer, answer.Type)
	}
	if !iceaddr.HasCandidate(answer.SDP) {
		return nil, ErrNoCandidates
	}
	if err := pc.SetRemoteDescription(*answer); err != nil {
		return nil, fmt.Errorf("applying answer: %w", err)
	}

	openTimer := time.NewTimer(d.cfg.OpenTimeout)
	defer openTimer.Stop()
	select {
	case rwc := <-opened:
		c.start(rwc)
	case err := <-openErr:
		return nil, fmt.Errorf("detaching data channel: %w", err)
	case <-pcFailed:
		return nil, fmt.Errorf("connecting to proxy: %w", c.err())
	case <-openTimer.C:
		return nil, fmt.Errorf("%w (%v)", ErrOpenTimeout, d.cfg.OpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ok = true
	return c, nil
}

// Label returns a fresh data channel label: "snowflake-" and 16 hex digits.
func Label() string {
	var b [8]byte
	rand.Read(b[:])
	return "snowflake-" + hex.EncodeToString(b[:])
}

// Conn is an open data channel used as a byte stream. Reads return the
// bytes of received messages in order, regardless of message boundaries;
// writes are sent as one or more binary messages.
type Conn struct {
	pc    *webrtc.PeerConnection
	dc    *webrtc.DataChannel
	log   *slog.Logger
	stale time.Duration

	rwc     datachannel.ReadWriteCloserDeadliner
	ready   chan struct{} // closed once rwc is set
	rbuf    []byte
	pending []byte // unread part of rbuf
	readMu  sync.Mutex
	writeMu sync.Mutex
	low     chan struct{} // signalled when the send buffer drains
	// onBlocked, when set (by tests, before the first Write), is called
	// each time a Write waits for the send buffer to drain.
	onBlocked func()

	lastRecv  atomic.Int64 // unix nanoseconds
	closeOnce sync.Once
	closed    chan struct{}
	errMu     sync.Mutex
	closeErr  error
}

func newConn(pc *webrtc.PeerConnection, dc *webrtc.DataChannel, stale time.Duration, log *slog.Logger) *Conn {
	return &Conn{
		pc:     pc,
		dc:     dc,
		log:    log,
		stale:  stale,
		ready:  make(chan struct{}),
		low:    make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
}

// start begins using the detached channel.
func (c *Conn) start(rwc datachannel.ReadWriteCloserDeadliner) {
	c.rwc = rwc
	c.rbuf = make([]byte, readBufSize)
	c.lastRecv.Store(time.Now().UnixNano())
	c.dc.SetBufferedAmountLowThreshold(lowWater)
	c.dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	close(c.ready)
	go c.watchStale()
}

// watchStale closes the conn when nothing has been received for c.stale.
func (c *Conn) watchStale() {
	tick := time.NewTicker(c.stale / 8)
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return
		case now := <-tick.C:
			last := time.Unix(0, c.lastRecv.Load())
			if now.Sub(last) > c.stale {
				c.log.Info("closing stale data channel", "idle", now.Sub(last).Round(time.Second))
				c.closeWith(ErrStale)
				return
			}
		}
	}
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(c.pending) == 0 {
		if err := c.readMessage(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// readMessage reads the next non-empty message into c.pending.
func (c *Conn) readMessage() error {
	for {
		select {
		case <-c.closed:
			return c.err()
		default:
		}
		n, err := c.rwc.Read(c.rbuf)
		if n > 0 {
			c.lastRecv.Store(time.Now().UnixNano())
			c.pending = c.rbuf[:n]
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				c.closeWith(ErrClosed)
				return io.EOF
			}
			c.closeWith(err)
			return c.err()
		}
	}
}

// Write implements net.Conn. It blocks while the channel's send buffer is
// over a high-water mark, so a fast writer cannot grow memory without bound.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	written := 0
	for len(p) > 0 {
		if err := c.waitBuffer(); err != nil {
			return written, err
		}
		chunk := p
		if len(chunk) > maxMessage {
			chunk = chunk[:maxMessage]
		}
		n, err := c.rwc.Write(chunk)
		written += n
		if err != nil {
			c.closeWith(err)
			return written, c.err()
		}
		p = p[len(chunk):]
	}
	return written, nil
}

func (c *Conn) waitBuffer() error {
	for c.dc.BufferedAmount() > highWater {
		if c.onBlocked != nil {
			c.onBlocked()
		}
		// The poll interval covers a low-buffer event that fired between
		// the check and the wait.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-c.low:
		case <-t.C:
		case <-c.closed:
			t.Stop()
			return c.err()
		}
		t.Stop()
	}
	select {
	case <-c.closed:
		return c.err()
	default:
		return nil
	}
}

// Close implements net.Conn. It closes the data channel and the peer
// connection.
func (c *Conn) Close() error {
	c.closeWith(net.ErrClosed)
	return nil
}

// Done is closed when the conn has closed, for whatever reason.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err returns why the conn closed, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.closed:
		return c.err()
	default:
		return nil
	}
}

func (c *Conn) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.closeErr == nil {
		return net.ErrClosed
	}
	return c.closeErr
}

func (c *Conn) closeWith(err error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.closeErr = err
		c.errMu.Unlock()
		close(c.closed)
		select {
		case <-c.ready:
			c.rwc.Close()
		default:
		}
		go func() {
			c.dc.Close()
			c.pc.Close()
		}()
	})
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return addr{} }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return addr{} }

// ProxyAddr returns the IP address of the proxy's end of the selected ICE
// candidate pair, or the zero Addr while none is selected. Two channels
// with the same one go through the same proxy (or at least the same host
// or NAT), so the death of one likely takes the other. It is not
// RemoteAddr, which callers may log.
func (c *Conn) ProxyAddr() netip.Addr {
	sctp := c.pc.SCTP()
	if sctp == nil {
		return netip.Addr{}
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// SetDeadline implements net.Conn (only the read deadline takes effect).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.rwc.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn; write deadlines are not supported.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

type addr struct{}

func (addr) Network() string { return "webrtc" }
func (addr) String() string  { return "webrtc" }
