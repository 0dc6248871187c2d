package main

import (
	"context"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
	"github.com/snowfall-pt/snowfall/proxy"
)

// oneClient is a broker with one client and a bridge: the first poll is
// matched, the client's data channel opens at once, and the test holds the
// far ends of the data channel and of the bridge's WebSocket.
type oneClient struct {
	mu      sync.Mutex
	matched bool
	dials   int
	client  chan net.Conn // the client's end of its data channel
	bridge  chan net.Conn // the bridge's end of the relay
}

func (o *oneClient) Post(ctx context.Context, u string, body []byte) ([]byte, error) {
	if strings.HasSuffix(u, "/answer") {
		return []byte(`{"Status":"success"}`), nil
	}
	o.mu.Lock()
	first := !o.matched
	o.matched = true
	o.mu.Unlock()
	if !first {
		return []byte(noMatch), nil
	}
	offer, _ := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeOffer, SDP: "v=0\r\n"})
	r := messages.ProxyPollResponse{Status: messages.StatusMatch, Offer: offer, NAT: "unrestricted"}
	return r.AppendJSON(nil), nil
}

func (o *oneClient) DialRelay(ctx context.Context, u *url.URL, _ func(netip.Addr) error) (net.Conn, error) {
	a, b := net.Pipe()
	o.mu.Lock()
	o.dials++
	check := o.dials == 1
	o.mu.Unlock()
	if check {
		b.Close() // the controller's bridge check, before any poll
	} else {
		o.bridge <- b
	}
	return a, nil
}

func (o *oneClient) NewAnswerer(context.Context, string) (proxy.Answerer, error) {
	return &pipeAnswerer{o: o}, nil
}

func (o *oneClient) NewOfferer(context.Context, string) (proxy.Offerer, error) {
	return nil, io.ErrUnexpectedEOF
}

type pipeAnswerer struct{ o *oneClient }

func (a *pipeAnswerer) Answer() string { return "v=0\r\n" }
func (a *pipeAnswerer) Accept(context.Context) (net.Conn, error) {
	x, y := net.Pipe()
	a.o.client <- y
	return x, nil
}
func (a *pipeAnswerer) Close() error { return nil }

// TestCountersWhileConnectionLasts checks that the core's events reach the
// page as they happen: the person helped and the bytes relayed show while
// the connection still runs, not only when it ends.
func TestCountersWhileConnectionLasts(t *testing.T) {
	o := &oneClient{client: make(chan net.Conn, 1), bridge: make(chan net.Conn, 1)}
	c := newController(platform{
		peers:  func([]string) proxy.PeerFactory { return o },
		dialer: o,
		poster: o,
		store:  &proxy.MemStore{},
	})
	updates := make(chan State, 1000)
	c.onUpdate(func(s State) {
		select {
		case updates <- s:
		default:
		}
	})
	cfg := PageConfig{Broker: "http://broker.test/", Relay: "ws://relay.test/", ForceNAT: "unrestricted",
		PollInterval: Duration(2 * time.Second)}
	if err := c.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	client, bridge := <-o.client, <-o.bridge
	defer client.Close()
	defer bridge.Close()
	// Data both ways through the running connection.
	go bridge.Write(make([]byte, 3000))
	if _, err := io.ReadFull(client, make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	go client.Write(make([]byte, 1000))
	if _, err := io.ReadFull(bridge, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The page is told, by an update, while the connection lasts.
	live := waitUpdate(t, updates, "live counters", func(s State) bool {
		return s.Clients == 1 && s.BytesToClients == 3000 && s.BytesFromClients == 1000
	})
	if live.Phase != PhaseServing || live.Helped24h != 1 || live.BytesTotal != 4000 || live.Matches != 1 || live.Polls < 1 {
		t.Errorf("state while serving: %+v", live)
	}
	// The end moves the bytes to the history, once.
	bridge.Close()
	end := waitUpdate(t, updates, "the end", func(s State) bool { return s.Clients == 0 && s.Helped24h == 1 })
	if end.BytesTotal != 4000 || end.HelpedTotal != 1 {
		t.Errorf("state after the end: %+v", end)
	}
}

// waitUpdate reads the page's updates until ok accepts one.
func waitUpdate(t *testing.T, updates <-chan State, what string, ok func(State) bool) State {
	t.Helper()
	timeout := time.After(30 * time.Second)
	var last State
	for {
		select {
		case s := <-updates:
			if ok(s) {
				return s
			}
			last = s
		case <-timeout:
			t.Fatalf("no update with %s; last %+v", what, last)
			return last
		}
	}
}
