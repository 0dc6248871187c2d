//go:build !js

// These tests talk HTTP to a fake broker (httptest), which only the
// native build has.

package proxy

import (
	"net/netip"
	"testing"

	"github.com/snowfall-pt/snowfall/common/messages"
)

// FuzzBrokerPollResponse feeds arbitrary broker replies through everything
// the proxy does with them before spending resources: decoding, the offer,
// the relay policy and the client address. Nothing may panic, and an
// accepted match never points at a non-public relay literal or a scheme
// other than wss.
func FuzzBrokerPollResponse(f *testing.F) {
	offer := testOffer(f)
	for _, relay := range []string{"", "wss://snowflake.torproject.net/", "wss://10.0.0.1/", "ws://x.snowflake.torproject.net/", "wss://[::1]:443/"} {
		f.Add([]byte(matchReply(offer, relay)))
	}
	f.Add([]byte(noMatchReply))
	f.Add([]byte(`{"Status":"incorrect relay pattern","NextPoll":3600000}`))
	f.Add([]byte(`{"Status":"client match","Offer":"{\"type\":\"offer\",\"sdp\":\"a=candidate:1 1 udp 1 ::1 9 typ host\"}","RelayURL":"wss://snowflake.torproject.net:0/"}`))
	f.Add([]byte(`{"Status":"client match","Offer":"{\"type\":\"answer\",\"sdp\":\"v=0\"}"}`))
	f.Add([]byte(`{"Status":"client match","Offer":"{\"type\":\"offer\",\"sdp\":\"\"}","NextPoll":-5}`))
	f.Add([]byte(`nonsense`))

	p, err := New(Config{ForceNATType: "unknown", PeerFactory: newFakePeers(false)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := decodePollResponse(body)
		if err != nil {
			return
		}
		if d := nextPollDelay(resp.NextPoll, p.cfg.PollInterval); d < MinPollInterval || d > MaxPollInterval {
			t.Fatalf("poll delay %v out of bounds", d)
		}
		if resp.Status != messages.StatusMatch {
			return
		}
		co, err := p.parseMatch(resp)
		if err != nil {
			return
		}
		if co.sdp == "" {
			t.Fatal("empty offer accepted")
		}
		if resp.RelayURL == "" {
			if co.relay != p.defaultRelay {
				t.Fatal("default relay not used")
			}
			return
		}
		if co.checkAddr == nil {
			t.Fatal("broker relay without an address check")
		}
		if co.relay.Scheme != "wss" {
			t.Fatalf("accepted scheme %q", co.relay.Scheme)
		}
		if a, err := netip.ParseAddr(co.relay.Hostname()); err == nil && !isPublicAddr(a) {
			t.Fatalf("accepted relay literal %s", a)
		}
	})
}
