//go:build !js

// These tests talk HTTP to a fake broker (httptest), which only the
// native build has.

package proxy

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
)

func TestNewSid(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		s := newSid()
		if len(s) != 22 || strings.ContainsAny(s, "=\n") {
			t.Fatalf("sid %q: want 22 characters without padding", s)
		}
		b, err := base64.RawStdEncoding.DecodeString(s)
		if err != nil || len(b) != 16 {
			t.Fatalf("sid %q: not 16 bytes of standard base64: %v", s, err)
		}
		if seen[s] {
			t.Fatalf("sid %q repeated", s)
		}
		seen[s] = true
	}
}

func TestFloorClients(t *testing.T) {
	for _, tt := range []struct{ in, want int }{
		{-3, 0}, {0, 0}, {1, 0}, {7, 0}, {8, 8}, {9, 8}, {15, 8}, {16, 16}, {100, 96},
	} {
		if got := floorClients(tt.in); got != tt.want {
			t.Errorf("floorClients(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestNextPollDelay(t *testing.T) {
	fb := 5 * time.Second
	for _, tt := range []struct {
		ms   int
		want time.Duration
	}{
		{0, fb},
		{-1000, fb},
		{1, MinPollInterval},
		{1999, MinPollInterval},
		{20000, 20 * time.Second},
		{3600000, MaxPollInterval},
		{1 << 62, MaxPollInterval},
	} {
		if got := nextPollDelay(tt.ms, fb); got != tt.want {
			t.Errorf("nextPollDelay(%d) = %v, want %v", tt.ms, got, tt.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	base := 5 * time.Second
	prevLow := time.Duration(0)
	for n := 1; n <= 40; n++ {
		lo := backoffDelay(n, base, 0)
		hi := backoffDelay(n, base, 0.999999)
		if lo < MinPollInterval {
			t.Fatalf("n=%d: delay %v below the minimum", n, lo)
		}
		if hi > MaxPollInterval || lo > hi {
			t.Fatalf("n=%d: jitter range [%v, %v] out of bounds", n, lo, hi)
		}
		if lo < prevLow {
			t.Fatalf("n=%d: lower bound %v shrank from %v", n, lo, prevLow)
		}
		prevLow = lo
	}
	// After a few failures the proxy waits minutes, not seconds.
	if d := backoffDelay(7, base, 0); d < 2*time.Minute {
		t.Errorf("after 7 failures: %v, want at least 2m", d)
	}
	if d := backoffDelay(0, 0, 0); d < MinPollInterval {
		t.Errorf("degenerate input: %v", d)
	}
}

func TestBrokerURLs(t *testing.T) {
	for _, tt := range []struct{ base, poll, answer string }{
		{"https://b.example/", "https://b.example/proxy", "https://b.example/answer"},
		{"https://b.example", "https://b.example/proxy", "https://b.example/answer"},
		{"https://b.example/a/b", "https://b.example/a/proxy", "https://b.example/a/answer"},
		{"http://127.0.0.1:8080/x/", "http://127.0.0.1:8080/x/proxy", "http://127.0.0.1:8080/x/answer"},
	} {
		bc, err := newBrokerClient(tt.base, HTTPPoster(nil), "standalone", "$")
		if err != nil {
			t.Fatal(err)
		}
		if bc.pollURL != tt.poll || bc.answerURL != tt.answer {
			t.Errorf("%s: got %s %s", tt.base, bc.pollURL, bc.answerURL)
		}
	}
}

func TestBrokerPollAndAnswer(t *testing.T) {
	var gotPoll, gotAnswer []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 1000)
		n, _ := r.Body.Read(body)
		switch r.URL.Path {
		case "/proxy":
			gotPoll = body[:n]
			w.Write([]byte(`{"Status":"no match","Offer":"","NAT":"","NextPoll":20000,"RelayURL":""}`))
		case "/answer":
			gotAnswer = body[:n]
			w.Write([]byte(`{"Status":"client gone"}`))
		}
	}))
	defer srv.Close()
	bc, _ := newBrokerClient(srv.URL+"/", HTTPPoster(srv.Client()), "standalone", "snowflake.torproject.net$")
	resp, err := bc.poll(t.Context(), "sid", "restricted", 13)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != messages.StatusNoMatch || resp.NextPoll != 20000 {
		t.Errorf("poll reply %+v", resp)
	}
	req, err := messages.DecodeProxyPollRequest(gotPoll)
	if err != nil {
		t.Fatalf("broker could not decode our poll %s: %v", gotPoll, err)
	}
	if req.Sid != "sid" || req.Version != "1.3" || req.Type != "standalone" || req.NAT != "restricted" ||
		req.Clients != 8 || req.AcceptedRelayPattern == nil || *req.AcceptedRelayPattern != "snowflake.torproject.net$" {
		t.Errorf("poll sent %s", gotPoll)
	}
	err = bc.answer(t.Context(), "sid", `{"type":"answer","sdp":"x"}`)
	if err == nil || !strings.Contains(err.Error(), "client gone") {
		t.Errorf("answer to a gone client: %v", err)
	}
	ans, err := messages.DecodeProxyAnswerRequest(gotAnswer)
	if err != nil || ans.Sid != "sid" || ans.Answer != `{"type":"answer","sdp":"x"}` {
		t.Errorf("answer sent %s (%v)", gotAnswer, err)
	}
}

func TestBrokerErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
	}{
		{"server error", 500, "", ErrBrokerStatus},
		{"bad request", 400, "bad", ErrBrokerStatus},
		{"too large", 200, strings.Repeat("x", MaxReplyBody+1), ErrBrokerBodyTooBig},
		{"relay pattern", 200, `{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`, ErrRelayPatternRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			bc, _ := newBrokerClient(srv.URL, HTTPPoster(srv.Client()), "standalone", "$")
			resp, err := bc.poll(t.Context(), "s", "unknown", 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("poll error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == ErrRelayPatternRejected && (resp == nil || resp.NextPoll != 3600000) {
				t.Errorf("relay-pattern reply lost its NextPoll: %+v", resp)
			}
		})
	}
}

func TestDecodePollResponse(t *testing.T) {
	for _, tt := range []struct {
		body   string
		ok     bool
		status string
	}{
		{`{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`, true, "no match"},
		{`{"Status":"client match","Offer":"{}","NAT":"restricted","RelayURL":"wss://x/"}`, true, "client match"},
		{`{"status":"no match"}`, true, "no match"},
		{`{"Status":"weird"}`, false, ""},
		{`{}`, false, ""},
		{`[`, false, ""},
		{``, false, ""},
	} {
		resp, err := decodePollResponse([]byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.body, err)
			continue
		}
		if tt.ok && resp.Status != tt.status {
			t.Errorf("%s: status %q", tt.body, resp.Status)
		}
	}
}
