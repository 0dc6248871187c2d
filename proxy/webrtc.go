package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/pion/webrtc/v4"
)

// ErrPeerFailed reports a peer connection that failed or closed before its
// data channel opened.
var ErrPeerFailed = errors.New("peer connection failed")

// pionFactory is the PeerFactory built on pion/webrtc. On js/wasm pion wraps
// the browser's RTCPeerConnection, so the same code serves both; only the
// SettingEngine differs (webrtc_native.go, webrtc_js.go).
type pionFactory struct {
	api    *webrtc.API
	config webrtc.Configuration
}

// NewWebRTCFactory returns the default PeerFactory: pion/webrtc with the
// given STUN servers, mDNS disabled, and the platform settings of wc.
func NewWebRTCFactory(stunURLs []string, wc WebRTCConfig) (PeerFactory, error) {
	se, err := settingEngine(wc)
	if err != nil {
		return nil, err
	}
	var servers []webrtc.ICEServer
	if len(stunURLs) > 0 {
		servers = []webrtc.ICEServer{{URLs: append([]string(nil), stunURLs...)}}
	}
	return &pionFactory{
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

// watchState returns a channel closed when pc fails or closes.
func watchState(pc *webrtc.PeerConnection) <-chan struct{} {
	failed := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			once.Do(func() { close(failed) })
		}
	})
	return failed
}

type pionAnswerer struct {
	pc     *webrtc.PeerConnection
	answer string
	failed <-chan struct{}
	opened chan net.Conn // the first data channel, once open

	closeOnce sync.Once
}

// NewAnswerer implements PeerFactory.
func (f *pionFactory) NewAnswerer(ctx context.Context, offer string) (Answerer, error) {
	pc, err := f.api.NewPeerConnection(f.config)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	a := &pionAnswerer{pc: pc, opened: make(chan net.Conn, 1)}
	a.failed = watchState(pc)
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
		return nil, ErrPeerFailed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
func (f *pionFactory) NewOfferer(ctx context.Context, label string) (Offerer, error) {
	pc, err := f.api.NewPeerConnection(f.config)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	o := &pionOfferer{pc: pc, open: make(chan struct{})}
	o.failed = watchState(pc)
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
		return ErrPeerFailed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *pionOfferer) Close() error { return o.pc.Close() }
