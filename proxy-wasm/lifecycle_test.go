package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/proxy"
)

// fakeNet is a broker and a bridge for the controller: the broker never
// has a client; either can be made unreachable.
type fakeNet struct {
	brokerDown, relayDown atomic.Bool
	polls, dials          atomic.Int64
	mu                    sync.Mutex
	pollNATs              []string
}

// noMatch is the broker's reply when it has no client.
const noMatch = `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`

func (f *fakeNet) Post(ctx context.Context, url string, body []byte) ([]byte, error) {
	if f.brokerDown.Load() {
		return nil, errors.New("connection refused")
	}
	f.polls.Add(1)
	f.mu.Lock()
	if i := strings.Index(string(body), `"NAT":"`); i >= 0 {
		rest := string(body)[i+7:]
		f.pollNATs = append(f.pollNATs, rest[:strings.IndexByte(rest, '"')])
	}
	f.mu.Unlock()
	return []byte(noMatch), nil
}

func (f *fakeNet) DialRelay(ctx context.Context, u *url.URL, _ func(netip.Addr) error) (net.Conn, error) {
	f.dials.Add(1)
	if f.relayDown.Load() {
		return nil, errors.New("websocket closed before it opened (code 1006)")
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

// noPeers fails every WebRTC request; the fake broker never matches.
type noPeers struct{}

func (noPeers) NewAnswerer(context.Context, string) (proxy.Answerer, error) {
	return nil, errors.New("no WebRTC")
}

func (noPeers) NewOfferer(context.Context, string) (proxy.Offerer, error) {
	return nil, errors.New("no WebRTC")
}

func waitFor(t *testing.T, c *controller, what string, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s := c.State(); ok(s) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: state %+v", what, c.State())
	return State{}
}

func TestController(t *testing.T) {
	fn := &fakeNet{}
	store := &proxy.MemStore{}
	var updates atomic.Int64
	c := newController(platform{
		peers:  func([]string) proxy.PeerFactory { return noPeers{} },
		dialer: fn,
		poster: fn,
		store:  store,
	})
	c.onUpdate(func(State) { updates.Add(1) })
	fn.relayDown.Store(true)
	cfg := PageConfig{Broker: "http://broker.test/", Relay: "ws://relay.test/", ForceNAT: "unrestricted",
		PollInterval: Duration(2 * time.Second)}
	if err := c.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	// The bridge cannot be reached: an error, and no poll goes out.
	s := waitFor(t, c, "the bridge error", func(s State) bool { return s.Error != nil && s.Error.Kind == ErrKindRelay })
	if s.Phase != PhaseError || s.Error.RetryAt == 0 || fn.polls.Load() != 0 {
		t.Errorf("state %+v, %d polls", s, fn.polls.Load())
	}

	// Retry after the bridge came back: polling starts.
	fn.relayDown.Store(false)
	c.Retry()
	s = waitFor(t, c, "polling", func(s State) bool { return s.Phase == PhaseWaiting && s.Polls > 0 })
	if s.NAT != "unrestricted" || s.Capacity != 2 || s.ProxyType != "badge" || s.Error != nil {
		t.Errorf("state %+v", s)
	}

	// The broker goes away: an error with the time of the next try.
	fn.brokerDown.Store(true)
	s = waitFor(t, c, "the broker error", func(s State) bool { return s.Error != nil && s.Error.Kind == ErrKindBroker })
	if s.Error.RetryAt <= time.Now().UnixMilli()-1000 {
		t.Errorf("retry at %v, not in the future", time.UnixMilli(s.Error.RetryAt))
	}
	fn.brokerDown.Store(false)
	c.Retry()
	waitFor(t, c, "recovery", func(s State) bool { return s.Error == nil && s.Phase == PhaseWaiting })

	// Every poll reported the forced NAT type.
	fn.mu.Lock()
	nats := append([]string(nil), fn.pollNATs...)
	fn.mu.Unlock()
	for _, n := range nats {
		if n != "unrestricted" {
			t.Errorf("poll reported NAT %q", n)
		}
	}

	c.Stop()
	waitFor(t, c, "the stop", func(s State) bool { return !s.Running && s.Phase == PhaseOff })
	if updates.Load() < 4 {
		t.Errorf("%d updates for the page", updates.Load())
	}
	if len(nats) == 0 {
		t.Error("no poll reached the broker")
	}
}

func TestControllerStartErrors(t *testing.T) {
	c := newController(platform{
		peers:  func([]string) proxy.PeerFactory { return noPeers{} },
		dialer: &fakeNet{},
		poster: &fakeNet{},
		store:  &proxy.MemStore{},
		webrtc: func() error { return errors.New("no RTCPeerConnection") },
	})
	if err := c.Start(PageConfig{}); err == nil {
		t.Fatal("started without WebRTC")
	}
	if s := c.State(); s.Running || s.Error == nil || s.Error.Kind != ErrKindWebRTC || s.Phase != PhaseError {
		t.Errorf("state %+v", s)
	}
	c.plat.webrtc = nil
	if err := c.Start(PageConfig{PollInterval: Duration(time.Second)}); err == nil {
		t.Fatal("started with a 1 s poll interval")
	}
	if s := c.State(); s.Error == nil || s.Error.Kind != ErrKindConfig {
		t.Errorf("state %+v", s)
	}
}
