//go:build !js

package pionpeer

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// pluggable is a UDP socket that can be unplugged: afterwards it sends and
// receives nothing, as when a client's machine vanishes without a word.
type pluggable struct {
	net.PacketConn
	unplugged atomic.Bool
}

func (p *pluggable) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := p.PacketConn.ReadFrom(b)
		if err != nil || !p.unplugged.Load() {
			return n, a, err
		}
	}
}

func (p *pluggable) WriteTo(b []byte, a net.Addr) (int, error) {
	if p.unplugged.Load() {
		return len(b), nil
	}
	return p.PacketConn.WriteTo(b, a)
}

// TestDeadClientEndsConnSoon: a client that vanishes (no close, no more
// packets) ends the proxy's conn at ICE Disconnected, about 5 s, not at
// Failed, about 30 s later: until then it would hold a capacity slot.
func TestDeadClientEndsConnSoon(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f, err := New(Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}

	// The client: pion on one loopback socket that the test can unplug.
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := &pluggable{PacketConn: udp}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock})
	defer mux.Close()
	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	client, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dc, err := client.CreateDataChannel("snowflake", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-done

	a, err := f.NewAnswerer(ctx, client.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.Answer()}); err != nil {
		t.Fatal(err)
	}
	conn, err := a.Accept(ctx)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the client's channel did not open")
	}
	if err := dc.Send([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}

	sock.unplugged.Store(true)
	start := time.Now()
	ended := make(chan error, 1)
	go func() {
		_, err := conn.Read(buf)
		ended <- err
	}()
	// Disconnected comes after pion's 5 s without traffic; Failed only
	// 25 s after that. 15 s separates the two whatever the machine.
	select {
	case err := <-ended:
		t.Logf("conn ended %v after the client vanished: %v", time.Since(start).Round(100*time.Millisecond), err)
		if err == nil {
			t.Error("read succeeded from a vanished client")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the conn of a vanished client still runs after 15 s")
	}
}
