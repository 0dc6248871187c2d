//go:build js

package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall/js"
	"time"

	"github.com/snowfall-pt/snowfall/proxy"
)

// setAnswerTimeout bounds applying the NAT probe's answer.
const setAnswerTimeout = 10 * time.Second

// webrtcAvailable reports why this browser cannot run the proxy, or nil.
func webrtcAvailable() error {
	if !js.Global().Get("RTCPeerConnection").Truthy() {
		return errors.New("this browser has no WebRTC (RTCPeerConnection), which Snowflake needs; it may be switched off in the browser's settings or by an extension")
	}
	return nil
}

// jsPeers is a proxy.PeerFactory on the browser's RTCPeerConnection. A
// message is queued in order, in the event handler itself (msgconn.go): a
// goroutine per message, as pion's js wrapper had, can reorder them.
type jsPeers struct {
	stun []string
}

func (p *jsPeers) rtcConfig() js.Value {
	servers := js.Global().Get("Array").New()
	if len(p.stun) > 0 {
		urls := js.Global().Get("Array").New()
		for _, s := range p.stun {
			urls.Call("push", s)
		}
		server := js.Global().Get("Object").New()
		server.Set("urls", urls)
		servers.Call("push", server)
	}
	cfg := js.Global().Get("Object").New()
	cfg.Set("iceServers", servers)
	return cfg
}

// peer is one RTCPeerConnection and its handlers.
type peer struct {
	pc       js.Value
	h        handlers
	failed   chan struct{}
	gathered chan struct{}
	failOnce sync.Once
	gathOnce sync.Once
	closed   sync.Once
	conn     *msgConn // the accepted data channel, once there is one (event loop only)
}

func (p *jsPeers) newPeer() (*peer, error) {
	if err := webrtcAvailable(); err != nil {
		return nil, err
	}
	pr := &peer{failed: make(chan struct{}), gathered: make(chan struct{})}
	err := jsCall(func() { pr.pc = js.Global().Get("RTCPeerConnection").New(p.rtcConfig()) })
	if err != nil {
		return nil, err
	}
	pr.h.on(pr.pc, "onconnectionstatechange", func(js.Value, []js.Value) {
		switch pr.pc.Get("connectionState").String() {
		case "disconnected", "failed", "closed":
			// Disconnected counts, as in proxy/pionpeer: it comes seconds
			// after a client vanishes, failed much later, and the slot
			// would be held until then. The relay ends on the EOF.
			pr.failOnce.Do(func() { close(pr.failed) })
			if pr.conn != nil {
				pr.conn.pushEOF()
			}
		}
	})
	pr.h.on(pr.pc, "onicegatheringstatechange", func(js.Value, []js.Value) {
		if pr.pc.Get("iceGatheringState").String() == "complete" {
			pr.gathOnce.Do(func() { close(pr.gathered) })
		}
	})
	return pr, nil
}

// setLocal applies desc as the local description and waits for ICE
// gathering to end or ctx to end, then returns the local SDP with the
// candidates found so far.
func (pr *peer) setLocal(ctx context.Context, desc js.Value) (string, error) {
	if _, err := await(ctx, pr.pc.Call("setLocalDescription", desc)); err != nil {
		return "", err
	}
	if pr.pc.Get("iceGatheringState").String() == "complete" {
		pr.gathOnce.Do(func() { close(pr.gathered) })
	}
	select {
	case <-pr.gathered:
	case <-ctx.Done():
	}
	ld := pr.pc.Get("localDescription")
	if !ld.Truthy() {
		return "", errors.New("no local description")
	}
	return ld.Get("sdp").String(), nil
}

func (pr *peer) close() {
	pr.closed.Do(func() {
		pr.h.clear()
		jsCall(func() { pr.pc.Call("close") })
		pr.failOnce.Do(func() { close(pr.failed) })
	})
}

func sessionDescription(typ, sdp string) js.Value {
	d := js.Global().Get("Object").New()
	d.Set("type", typ)
	d.Set("sdp", sdp)
	return d
}

// NewAnswerer implements proxy.PeerFactory.
func (p *jsPeers) NewAnswerer(ctx context.Context, offer string) (proxy.Answerer, error) {
	pr, err := p.newPeer()
	if err != nil {
		return nil, err
	}
	a := &jsAnswerer{peer: pr, opened: make(chan net.Conn, 1)}
	var taken bool
	pr.h.on(pr.pc, "ondatachannel", func(_ js.Value, args []js.Value) {
		dc := args[0].Get("channel")
		if taken {
			// A client opens one channel; more would only cost memory.
			jsCall(func() { dc.Call("close") })
			return
		}
		taken = true
		conn := wrapDataChannel(dc, &pr.h, pr.close)
		pr.conn = conn
		pr.h.on(dc, "onopen", func(js.Value, []js.Value) {
			select {
			case a.opened <- conn:
			default:
			}
		})
		if dc.Get("readyState").String() == "open" {
			select {
			case a.opened <- conn:
			default:
			}
		}
	})
	if _, err := await(ctx, pr.pc.Call("setRemoteDescription", sessionDescription("offer", offer))); err != nil {
		pr.close()
		return nil, err
	}
	answer, err := await(ctx, pr.pc.Call("createAnswer"))
	if err != nil {
		pr.close()
		return nil, err
	}
	a.answer, err = pr.setLocal(ctx, answer)
	if err != nil {
		pr.close()
		return nil, err
	}
	return a, nil
}

type jsAnswerer struct {
	*peer
	answer string
	opened chan net.Conn
}

func (a *jsAnswerer) Answer() string { return a.answer }

func (a *jsAnswerer) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-a.opened:
		return c, nil
	case <-a.failed:
		return nil, proxy.ErrPeerFailed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *jsAnswerer) Close() error { a.close(); return nil }

// NewOfferer implements proxy.PeerFactory.
func (p *jsPeers) NewOfferer(ctx context.Context, label string) (proxy.Offerer, error) {
	pr, err := p.newPeer()
	if err != nil {
		return nil, err
	}
	o := &jsOfferer{peer: pr, open: make(chan struct{})}
	var dc js.Value
	if err := jsCall(func() { dc = pr.pc.Call("createDataChannel", label) }); err != nil {
		pr.close()
		return nil, err
	}
	var once sync.Once
	pr.h.on(dc, "onopen", func(js.Value, []js.Value) { once.Do(func() { close(o.open) }) })
	offer, err := await(ctx, pr.pc.Call("createOffer"))
	if err != nil {
		pr.close()
		return nil, err
	}
	o.offer, err = pr.setLocal(ctx, offer)
	if err != nil {
		pr.close()
		return nil, err
	}
	return o, nil
}

type jsOfferer struct {
	*peer
	offer string
	open  chan struct{}
}

func (o *jsOfferer) Offer() string { return o.offer }

func (o *jsOfferer) SetAnswer(answer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setAnswerTimeout)
	defer cancel()
	_, err := await(ctx, o.pc.Call("setRemoteDescription", sessionDescription("answer", answer)))
	return err
}

func (o *jsOfferer) WaitOpen(ctx context.Context) error {
	select {
	case <-o.open:
		return nil
	case <-o.failed:
		return proxy.ErrPeerFailed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *jsOfferer) Close() error { o.close(); return nil }

// dcTransport is a msgTransport on an RTCDataChannel.
type dcTransport struct {
	dc      js.Value
	onClose func()
	once    sync.Once
}

func (t *dcTransport) send(b []byte) error {
	return jsCall(func() { t.dc.Call("send", jsBytes(b)) })
}

func (t *dcTransport) buffered() int { return t.dc.Get("bufferedAmount").Int() }

func (t *dcTransport) close() {
	t.once.Do(func() {
		jsCall(func() { t.dc.Call("close") })
		// Closing the conn closes the peer too (proxy.Answerer.Accept).
		t.onClose()
	})
}

// wrapDataChannel presents dc as a net.Conn. Its handlers are set in h,
// which the peer clears when it closes.
func wrapDataChannel(dc js.Value, h *handlers, closePeer func()) *msgConn {
	dc.Set("binaryType", "arraybuffer")
	dc.Set("bufferedAmountLowThreshold", sendLowWater)
	t := &dcTransport{dc: dc, onClose: closePeer}
	conn := newMsgConn(t, browserAddr("webrtc"))
	h.on(dc, "onmessage", func(_ js.Value, args []js.Value) {
		conn.push(bytesOf(args[0].Get("data")))
	})
	h.on(dc, "onbufferedamountlow", func(js.Value, []js.Value) { conn.bufferLow() })
	h.on(dc, "onclose", func(js.Value, []js.Value) { conn.pushEOF() })
	return conn
}
