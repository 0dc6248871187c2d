package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/common/messages"
)

type fakeHooks struct {
	allow    bool
	nat      string
	failures []error
	answers  []*messages.ProxyPollResponse
	errs     []error
}

func (h *fakeHooks) beforePoll() (bool, string) { return h.allow, h.nat }
func (h *fakeHooks) pollFailed(err error)       { h.failures = append(h.failures, err) }
func (h *fakeHooks) pollAnswered(r *messages.ProxyPollResponse, err error) {
	h.answers = append(h.answers, r)
	h.errs = append(h.errs, err)
}

// fakeBroker answers every request with status and body, recording what it
// got; err makes the round trip fail instead.
type fakeBroker struct {
	status int
	body   string
	err    error
	got    []string // URL and body of each request
}

func (b *fakeBroker) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	b.got = append(b.got, req.URL.String()+" "+string(body))
	if b.err != nil {
		return nil, b.err
	}
	return &http.Response{StatusCode: b.status, Status: http.StatusText(b.status),
		Body: io.NopCloser(strings.NewReader(b.body)), Request: req}, nil
}

const pollBody = `{"Sid":"s","Version":"1.3","Type":"badge","NAT":"unrestricted","Clients":0,"AcceptedRelayPattern":"a$"}`

func doPoll(t *testing.T, g *gate, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(pollBody))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.RoundTrip(req)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	return b
}

func TestGate(t *testing.T) {
	const match = `{"Status":"client match","Offer":"{\"type\":\"offer\",\"sdp\":\"v=0\"}","NAT":"restricted","NextPoll":20000,"RelayURL":"wss://a/"}`
	for _, tc := range []struct {
		name      string
		hooks     fakeHooks
		broker    fakeBroker
		url       string
		wantSent  int    // requests that reached the broker
		wantBody  string // reply the core gets
		wantFail  int
		wantReply int
		wantNAT   string // NAT in the request the broker got
	}{
		{"held back", fakeHooks{allow: false}, fakeBroker{status: 200, body: match}, "https://b/proxy",
			0, string(noMatch), 0, 0, ""},
		{"match passes, NextPoll stripped", fakeHooks{allow: true}, fakeBroker{status: 200, body: match}, "https://b/proxy",
			1, `{"Status":"client match","Offer":"{\"type\":\"offer\",\"sdp\":\"v=0\"}","NAT":"restricted","RelayURL":"wss://a/"}`, 0, 1, "unrestricted"},
		{"learned NAT rewritten", fakeHooks{allow: true, nat: "restricted"}, fakeBroker{status: 200, body: `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`}, "https://b/proxy",
			1, `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`, 0, 1, "restricted"},
		{"unreachable", fakeHooks{allow: true}, fakeBroker{err: errors.New("fetch failed")}, "https://b/proxy",
			1, string(noMatch), 1, 0, "unrestricted"},
		{"HTTP error", fakeHooks{allow: true}, fakeBroker{status: 500, body: "oops"}, "https://b/proxy",
			1, string(noMatch), 1, 0, "unrestricted"},
		{"garbage", fakeHooks{allow: true}, fakeBroker{status: 200, body: "<html>"}, "https://b/proxy",
			1, string(noMatch), 1, 0, "unrestricted"},
		{"pattern rejected passes", fakeHooks{allow: true}, fakeBroker{status: 200, body: `{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`}, "https://b/proxy",
			1, `{"Status":"incorrect relay pattern","Offer":"","NAT":"","NextPoll":3600000,"RelayURL":""}`, 0, 1, "unrestricted"},
		{"answers untouched", fakeHooks{allow: false}, fakeBroker{status: 200, body: `{"Status":"success"}`}, "https://b/answer",
			1, `{"Status":"success"}`, 0, 0, "unrestricted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGate(&tc.broker, "https://b/", &tc.hooks)
			if err != nil {
				t.Fatal(err)
			}
			got := doPoll(t, g, tc.url)
			if string(got) != tc.wantBody {
				t.Errorf("core got %s, want %s", got, tc.wantBody)
			}
			if len(tc.broker.got) != tc.wantSent {
				t.Fatalf("broker got %d requests, want %d", len(tc.broker.got), tc.wantSent)
			}
			if tc.wantSent > 0 && !strings.Contains(tc.broker.got[0], `"NAT":"`+tc.wantNAT+`"`) {
				t.Errorf("broker got %s, want NAT %s", tc.broker.got[0], tc.wantNAT)
			}
			if len(tc.hooks.failures) != tc.wantFail || len(tc.hooks.answers) != tc.wantReply {
				t.Errorf("failures %v, answers %d", tc.hooks.failures, len(tc.hooks.answers))
			}
		})
	}
}

func TestGateStoppedIsNotAFailure(t *testing.T) {
	b := &fakeBroker{err: context.Canceled}
	h := &fakeHooks{allow: true}
	g, _ := newGate(b, "https://b/", h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://b/proxy", bytes.NewReader([]byte(pollBody)))
	if _, err := g.RoundTrip(req); err == nil {
		t.Error("a stopped poll succeeded")
	}
	if len(h.failures) != 0 {
		t.Errorf("a stopped poll counted as a broker failure: %v", h.failures)
	}
}

func TestGateBrokerPath(t *testing.T) {
	// Polls go where the core sends them: "proxy" resolved against the
	// broker URL.
	for base, poll := range map[string]string{
		"https://b/":        "https://b/proxy",
		"https://b/x/":      "https://b/x/proxy",
		"http://10.0.0.1:8": "http://10.0.0.1:8/proxy",
	} {
		g, err := newGate(nil, base, nil)
		if err != nil || g.pollURL != poll {
			t.Errorf("%s: poll URL %q (%v), want %q", base, g.pollURL, err, poll)
		}
	}
}
