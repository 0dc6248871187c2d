// Package pionpeer is the proxy's native WebRTC: a proxy.PeerFactory on
// pion/webrtc. It lives apart from the proxy core so that programs that
// bring their own WebRTC (the browser proxy, on the browser's
// RTCPeerConnection) do not link pion; snowfall-proxy, proxy/mobile and the
// self-test inject it through proxy.Config.PeerFactory.
package pionpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/proxy"
)

// Config tunes the factory. Fields that a platform cannot honour are
// ignored there.
type Config struct {
	// STUNURLs are the ICE servers (stun: URLs).
	STUNURLs []string
	// PortMin and PortMax restrict the local UDP ports; both zero means any.
	PortMin, PortMax uint16
	// OutboundAddress, when valid, is advertised in place of the host
	// candidates' addresses (a host behind a 1:1 NAT or with several
	// addresses).
	OutboundAddress netip.Addr
	// IncludeLoopback gathers loopback candidates too (tests only).
	IncludeLoopback bool
}

// Factory is the proxy.PeerFactory built on pion/webrtc.
type Factory struct {
	api    *webrtc.API
	config webrtc.Configuration
}

var _ proxy.PeerFactory = (*Factory)(nil)

// New returns a factory with the STUN servers of c, mDNS disabled, and the
// platform settings of c.
func New(c Config) (*Factory, error) {
	if (c.PortMin == 0) != (c.PortMax == 0) || c.PortMin > c.PortMax {
		return nil, fmt.Errorf("ephemeral port range %d:%d: want min:max, both non-zero, min <= max", c.PortMin, c.PortMax)
	}
	se, err := settingEngine(c)
	if err != nil {
		return nil, err
	}
	var servers []webrtc.ICEServer
	if len(c.STUNURLs) > 0 {
		servers = []webrtc.ICEServer{{URLs: append([]string(nil), c.STUNURLs...)}}
	}
	return &Factory{
		api:    webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		config: webrtc.Configuration{ICEServers: servers},
	}, nil
}

// gather sets desc as the local description and waits for ICE gathering
// to finish or ctx to end, then returns the local description with the
// candidates found so far.
func gather(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	ld := pc.LocalDescription()
	if ld == nil {
		return "", errors.New("no local description")
	}
	return ld.SDP, nil
}

// deadState reports whether a peer in state s has lost its client. ICE
// Disconnected counts: it comes about 5 s after the client's last
// consent check, while Failed would come only after pion's 25 s failed
// timeout, holding a capacity slot all that time for a client that is
// gone. A client that merely blips reconnects from scratch (a new offer),
// so nothing is lost by giving up at Disconnected.
func deadState(s webrtc.PeerConnectionState) bool {
	switch s {
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		return true
	}
	return false
}

// watchState returns a channel closed when pc has lost its peer
// (deadState), and calls onDead (if set) once at that moment.
func watchState(pc *webrtc.PeerConnection, onDead func()) <-chan struct{} {
	failed := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if deadState(s) {
			once.Do(func() {
				close(failed)
				if onDead != nil {
					// Not inline: closing the peer from its own callback
					// can deadlock.
					go onDead()
				}
			})
		}
	})
	return failed
}

type pionAnswerer struct {
	pc     *webrtc.PeerConnection
	answer string
	failed <-chan struct{}
	opened chan net.Conn // the first data channel, once open

	mu        sync.Mutex
	conn      *dcConn // the accepted channel's conn, once there is one
	closeOnce sync.Once
}

// NewAnswerer implements PeerFactory.
func (f *Factory) NewAnswerer(ctx context.Context, offer string) (proxy.Answerer, error) {
	pc, err := f.api.NewPeerConnection(f.config)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	a := &pionAnswerer{pc: pc, opened: make(chan net.Conn, 1)}
	// A dead peer closes the relayed conn too, so the relay ends and the
	// slot frees without waiting for the relay's inactivity timeout.
	a.failed = watchState(pc, a.closeConn)
	var once sync.Once
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		accepted := false
		once.Do(func() { accepted = true })
		if !accepted {
			// A client opens one channel; more would only cost memory.
			dc.Close()
			return
		}
		// Wrap before the channel opens so no message is missed.
		conn := newDCConn(dc, a.closePeer)
		a.mu.Lock()
		a.conn = conn
		a.mu.Unlock()
		dc.OnOpen(func() { a.opened <- conn })
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return nil, fmt.Errorf("set remote description: %w", err)
	}
	desc, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("create answer: %w", err)
	}
	a.answer, err = gather(ctx, pc, desc)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return a, nil
}

func (a *pionAnswerer) Answer() string { return a.answer }

func (a *pionAnswerer) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-a.opened:
		return c, nil
	case <-a.failed:
		return nil, proxy.ErrPeerFailed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// closeConn ends the accepted conn (and with it the peer), or the peer
// alone when no channel was accepted.
func (a *pionAnswerer) closeConn() {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c != nil {
		c.Close()
		return
	}
	a.closePeer()
}

func (a *pionAnswerer) closePeer() {
	a.closeOnce.Do(func() { a.pc.Close() })
}

func (a *pionAnswerer) Close() error {
	a.closePeer()
	return nil
}

type pionOfferer struct {
	pc     *webrtc.PeerConnection
	offer  string
	failed <-chan struct{}
	open   chan struct{}
}

// NewOfferer implements PeerFactory.
func (f *Factory) NewOfferer(ctx context.Context, label string) (proxy.Offerer, error) {
	pc, err := f.api.NewPeerConnection(f.config)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	o := &pionOfferer{pc: pc, open: make(chan struct{})}
	o.failed = watchState(pc, nil)
	dc, err := pc.CreateDataChannel(label, nil)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("create data channel: %w", err)
	}
	var once sync.Once
	dc.OnOpen(func() { once.Do(func() { close(o.open) }) })
	desc, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("create offer: %w", err)
	}
	o.offer, err = gather(ctx, pc, desc)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return o, nil
}

func (o *pionOfferer) Offer() string { return o.offer }

func (o *pionOfferer) SetAnswer(answer string) error {
	return o.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
}

func (o *pionOfferer) WaitOpen(ctx context.Context) error {
	select {
	case <-o.open:
		return nil
	case <-o.failed:
		return proxy.ErrPeerFailed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *pionOfferer) Close() error { return o.pc.Close() }
