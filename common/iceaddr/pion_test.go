//go:build !js

package iceaddr

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// The browser build of pion wraps RTCPeerConnection and has no
// SettingEngine network controls, hence the build constraint.

// TestPionLoopbackOffer strips a real pion offer gathered on loopback only
// and checks that pion still accepts the result.
func TestPionLoopbackOffer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	newPC := func() *webrtc.PeerConnection {
		var se webrtc.SettingEngine
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	offerer := newPC()
	if _, err := offerer.CreateDataChannel("snowflake-0123456789abcdef", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("gathering did not complete")
	}
	full := offerer.LocalDescription().SDP
	if !strings.Contains(full, "127.0.0.1") || !strings.Contains(full, "typ host") {
		t.Fatalf("expected a loopback host candidate in:\n%s", full)
	}
	stripped := StripLocalCandidates(full)
	checkNoLocalHost(t, stripped)
	if strings.Contains(stripped, "127.0.0.1 ") || HasCandidate(stripped) {
		t.Fatalf("loopback candidate kept:\n%s", stripped)
	}
	if _, ok := ClientAddr(full); ok {
		t.Fatal("a loopback-only offer has a client address")
	}
	answerer := newPC()
	if err := answerer.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: stripped}); err != nil {
		t.Fatalf("pion rejects the stripped offer: %v", err)
	}
}
