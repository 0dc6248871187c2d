package broker

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func fuzzBroker(f *testing.F) http.Handler {
	cfg := testConfig()
	cfg.ProxyTimeout = time.Millisecond
	cfg.ClientTimeout = time.Millisecond
	cfg.DefaultRelayPattern = testPattern
	b, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	return b.Handler()
}

func checkStatus(t *testing.T, r result) {
	switch r.code {
	case 200, 400, 500, 503, 504:
	default:
		t.Fatalf("status %d", r.code)
	}
}

func FuzzClientHandler(f *testing.F) {
	h := fuzzBroker(f)
	f.Add(clientPoll(testOffer, "unknown", ""), "")
	f.Add(clientPoll(testOffer, "unrestricted", fp2), "")
	f.Add("1.0\n{\"offer\":\"x\",\"fingerprint\":\"00\"}", "")
	f.Add(testOffer, "restricted")
	f.Add("{", "cone")
	f.Add("1.0\n{\"offer\":1}", "")
	f.Fuzz(func(t *testing.T, body, nat string) {
		checkStatus(t, do(h, "POST", "/client", body, "Snowflake-NAT-Type", nat))
	})
}

func FuzzProxyHandler(f *testing.F) {
	h := fuzzBroker(f)
	f.Add(proxyPoll("sid", "unknown", 0, pat(testPattern)))
	f.Add(proxyPoll("sid", "unrestricted", 8, nil))
	f.Add(`{"Sid":"a","Version":"1.2","Clients":-5,"AcceptedRelayPattern":""}`)
	f.Add(`{"sid":"a","version":"1","nat":"restricted","acceptedrelaypattern":"^x"}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := do(h, "POST", "/proxy", body)
		checkStatus(t, r)
		if r.code == 200 && len(r.body) == 0 {
			t.Fatal("empty 200 reply")
		}
	})
}

func FuzzAnswerHandler(f *testing.F) {
	h := fuzzBroker(f)
	f.Add(answerBody("sid", testAnswer))
	f.Add(`{"Version":"1.0","Sid":"x","Answer":""}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := do(h, "POST", "/answer", body)
		checkStatus(t, r)
		if r.code == 200 && r.body != `{"Status":"client gone"}` {
			t.Fatalf("answer without a client: %q", r.body)
		}
	})
}

func FuzzAMPHandler(f *testing.F) {
	h := fuzzBroker(f)
	f.Add("0abcdefghijkl/" + "MS4wCnt9")
	f.Add("0/")
	f.Add("1x/y")
	f.Add("0a/b/c/MS4wCnsib2ZmZXIiOiJ4In0")
	f.Fuzz(func(t *testing.T, path string) {
		req := httptestRequest("GET", "/amp/client/", "")
		req.URL.Path = "/amp/client/" + path
		r := serve(h, req)
		if r.code != 200 && r.code != 500 && r.code/100 != 3 {
			t.Fatalf("status %d", r.code)
		}
	})
}

// FuzzSessionDescription checks the SDP sanity check on arbitrary text: it
// never panics, fails only with its own errors, and whatever it accepts has
// the parts it promises.
func FuzzSessionDescription(f *testing.F) {
	f.Add(testOffer, "offer")
	f.Add(testAnswer, "answer")
	f.Add(`{"type":"offer","sdp":"v=0\nm=application 9 DTLS/SCTP 5000\na=ice-ufrag:a\na=ice-pwd:b\na=fingerprint:c\n"}`, "offer")
	f.Add(`{"type":"offer","sdp":"v=0\r\n\u0000"}`, "offer")
	f.Add(`{"sdp":"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=fingerprint:c\r\n","type":"offer"}`, "offer")
	f.Add(`{"type":"answer","sdp":"v=0\r\na=x\ry\r\n"}`, "answer")
	f.Add(`{"type":"}`, "offer")
	f.Add(`{"sdp":"}`, "offer")
	f.Add(`{"sdp":"","type":""}`, "")
	f.Fuzz(func(t *testing.T, desc, want string) {
		err := checkSessionDescription(desc, want, 4096)
		if err != nil && !errors.Is(err, errSDPInvalid) && !errors.Is(err, errSDPTooLarge) {
			t.Fatalf("error %v is neither errSDPInvalid nor errSDPTooLarge", err)
		}
		if len(desc) > 4096 {
			if err == nil {
				t.Fatalf("accepted %d bytes", len(desc))
			}
			return
		}
		// The fast path on escaped text must agree with decoding.
		var d sdpJSON
		slow := json.Unmarshal([]byte(desc), &d)
		if slow == nil && d.Type != want {
			slow = errSDPInvalid
		}
		if slow == nil {
			slow = checkSDP(d.SDP, false)
		}
		if (err == nil) != (slow == nil) {
			t.Fatalf("%q: checked %v, decoded and checked %v", desc, err, slow)
		}
		if err == nil && !strings.Contains(d.SDP, "m=application ") {
			t.Fatalf("accepted %q without a data channel", desc)
		}
	})
}
