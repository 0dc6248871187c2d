package probetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpjson"
	"github.com/snowfall-pt/snowfall/proxy"
	"github.com/snowfall-pt/snowfall/proxy/pionpeer"
)

// realOffer makes a genuine pion offer with a data channel.
func realOffer(t *testing.T) (string, *webrtc.PeerConnection) {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.CreateDataChannel("test", nil); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sdpjson.Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	return s, pc
}

func probeBody(status, offer, relay string) string {
	b, _ := (&messages.ProxyPollResponse{Status: status, Offer: offer, RelayURL: relay}).Encode()
	return string(b)
}

func TestHandlerRejectsBadInput(t *testing.T) {
	h := NewHandler(Config{})
	defer h.Close()
	offer, _ := realOffer(t)
	answerJSON, _ := sdpjson.Encode(&webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0\r\n"})
	tests := []struct {
		name   string
		method string
		body   string
		want   int
	}{
		{"empty body", "POST", "", 400},
		{"not JSON", "POST", "hello", 400},
		{"no status", "POST", `{"Offer":"x"}`, 400},
		{"no match", "POST", probeBody("no match", "", ""), 400},
		{"relay URL set", "POST", probeBody("client match", offer, "wss://x/"), 400},
		{"offer not SDP JSON", "POST", probeBody("client match", "v=0", ""), 400},
		{"answer instead of offer", "POST", probeBody("client match", answerJSON, ""), 400},
		{"unknown SDP type", "POST", probeBody("client match", `{"type":"bogus","sdp":"v=0"}`, ""), 400},
		{"too large", "POST", `{"Status":"client match","Offer":"` + strings.Repeat("a", MaxBody) + `"}`, 400},
		{"garbage SDP", "POST", probeBody("client match", `{"type":"offer","sdp":"not sdp"}`, ""), 500},
		{"GET", "GET", "", 405},
		{"preflight", "OPTIONS", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/probe", strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
		})
	}
}

func TestHandlerAnswers(t *testing.T) {
	h := NewHandler(Config{})
	defer h.Close()
	offer, _ := realOffer(t)
	// Tor's webext sends only Status and Offer.
	body := `{"Status":"client match","Offer":` + jsonString(offer) + `}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/probe", strings.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	ans, err := messages.DecodeProxyAnswerRequest(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("reply %s: %v", rec.Body, err)
	}
	if ans.Sid != StubSid || ans.Version != "1.3" {
		t.Errorf("reply %s", rec.Body)
	}
	desc, err := sdpjson.Decode(ans.Answer)
	if err != nil || desc.Type != webrtc.SDPTypeAnswer || !strings.Contains(desc.SDP, "webrtc-datachannel") {
		t.Fatalf("answer %q: %v", ans.Answer, err)
	}
	for _, line := range strings.Split(desc.SDP, "\n") {
		if strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, " typ host") &&
			(strings.Contains(line, " 10.") || strings.Contains(line, " 192.168.") || strings.Contains(line, " 127.")) {
			t.Errorf("local candidate left in answer: %s", line)
		}
	}
}

func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", `\r`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func TestHandlerBoundsPeers(t *testing.T) {
	h := NewHandler(Config{MaxPeers: 1})
	defer h.Close()
	codes := []int{}
	for range 2 {
		offer, _ := realOffer(t)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/probe", strings.NewReader(probeBody("client match", offer, ""))))
		codes = append(codes, rec.Code)
	}
	if codes[0] != 200 || codes[1] != http.StatusServiceUnavailable {
		t.Fatalf("codes %v, want [200 503]", codes)
	}
}

// TestProbeRoundTrip runs the proxy's NAT probe against the service over
// loopback, where nothing filters: the verdict must be unrestricted.
func TestProbeRoundTrip(t *testing.T) {
	h := NewHandler(Config{IncludeLoopback: true, KeepLocalAddresses: true})
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/probe", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	pf, err := pionpeer.New(pionpeer.Config{IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := proxy.ProbeNAT(t.Context(), pf, proxy.HTTPPoster(srv.Client()), srv.URL+"/probe", 5*time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != "unrestricted" || !res.Offered {
		t.Fatalf("result %+v", res)
	}
	t.Logf("probe took %v", time.Since(start))
}

func TestProbeServiceReadsAll(t *testing.T) {
	// A body cut short is a read error, answered with 400.
	h := NewHandler(Config{})
	defer h.Close()
	req := httptest.NewRequest("POST", "/probe", io.NopCloser(errReader{}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("status %d", rec.Code)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// FuzzParseRequest: no input panics, and what is accepted is an offer.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(probeBody("client match", `{"type":"offer","sdp":"v=0\r\n"}`, "")))
	f.Add([]byte(`{"Status":"client match","Offer":"{\"type\":\"offer\",\"sdp\":\"v=0\"}","RelayURL":"wss://x/"}`))
	f.Add([]byte(`{"Status":"no match"}`))
	f.Add([]byte(`{"status":"client match","offer":"{\"TYPE\":\"offer\",\"SDP\":\"x\"}"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sdp, err := parseRequest(body)
		if err != nil {
			return
		}
		if sdp == "" {
			t.Fatal("accepted an empty offer")
		}
		msg, err := messages.DecodeProxyPollResponse(body)
		if err != nil || msg.RelayURL != "" {
			t.Fatalf("accepted %q", body)
		}
	})
}
