//go:build !js

package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/snowfall-pt/snowfall/broker"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
)

// probeServer answers the NAT probe as the probe service does.
func probeServer(t *testing.T) *httptest.Server {
	answer, _ := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeAnswer, SDP: "v=0\r\n"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := (&messages.ProxyAnswerRequest{Sid: "probe", Answer: answer}).Encode()
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// okDialer accepts every relay dial and records them.
type okDialer struct {
	mu   sync.Mutex
	urls []string
	err  error
}

func (d *okDialer) DialRelay(_ context.Context, u *url.URL, _ func(netip.Addr) error) (net.Conn, error) {
	d.mu.Lock()
	d.urls = append(d.urls, u.String())
	d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func selfTestConfig(brokerURL string, probe *httptest.Server, pf PeerFactory, d RelayDialer) Config {
	return Config{
		BrokerURL:   brokerURL,
		RelayURL:    "wss://relay.example/",
		NATProbeURL: probe.URL + "/probe",
		PeerFactory: pf,
		RelayDialer: d,
		Poster:      HTTPPoster(probe.Client()),
	}
}

func checkNamed(t *testing.T, r *SelfTestReport, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in\n%s", name, r)
	return Check{}
}

// TestSelfTestTakesNoClient runs the self-test against our real broker: its
// poll carries a relay pattern that the broker refuses before it holds the
// poll, so no client can be matched to it. (The old self-test polled like
// a proxy and dropped whatever client it got.)
func TestSelfTestTakesNoClient(t *testing.T) {
	b, err := broker.New(broker.Config{AllowedRelayPattern: "snowflake.torproject.net$"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bs := httptest.NewServer(b.Handler())
	defer bs.Close()
	var pollMu sync.Mutex
	var patterns []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/proxy" {
			body := new(strings.Builder)
			r.Body = http.MaxBytesReader(w, r.Body, MaxReplyBody)
			tee := &teeReader{r: r.Body, w: body}
			r.Body = tee
			b.Handler().ServeHTTP(w, r)
			if req, err := messages.DecodeProxyPollRequest([]byte(body.String())); err == nil && req.AcceptedRelayPattern != nil {
				pollMu.Lock()
				patterns = append(patterns, *req.AcceptedRelayPattern)
				pollMu.Unlock()
			}
			return
		}
		b.Handler().ServeHTTP(w, r)
	}))
	defer front.Close()

	rep, err := SelfTest(t.Context(), selfTestConfig(front.URL+"/", probeServer(t), &fakeOfferPeers{}, &okDialer{}))
	if err != nil {
		t.Fatal(err)
	}
	if c := checkNamed(t, rep, "broker"); c.Status != CheckOK {
		t.Errorf("broker check %+v", c)
	}
	pollMu.Lock()
	if len(patterns) != 1 || patterns[0] != selfTestPattern {
		t.Errorf("self-test polls carried patterns %q, want one %q", patterns, selfTestPattern)
	}
	pollMu.Unlock()

	// The broker refuses such a poll outright, whatever clients it has:
	// the reply is the refusal, never a match.
	bc, _ := newBrokerClient(bs.URL+"/", HTTPPoster(bs.Client()), "standalone", "snowflake.torproject.net$")
	resp, err := bc.pollPattern(t.Context(), newSid(), "unknown", 0, selfTestPattern)
	if !errors.Is(err, ErrRelayPatternRejected) || resp == nil || resp.Status != messages.StatusIncorrectRelayPattern {
		t.Fatalf("self-test poll got (%+v, %v), want an incorrect relay pattern refusal", resp, err)
	}
}

type teeReader struct {
	r interface{ Read([]byte) (int, error) }
	w *strings.Builder
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.w.Write(p[:n])
	return n, err
}
func (t *teeReader) Close() error { return nil }

// TestSelfTestFailures covers the failure paths: an unreachable broker, an
// unreachable relay, and a restrictive NAT.
func TestSelfTestFailures(t *testing.T) {
	probe := probeServer(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/"
	dead.Close() // nothing listens there now

	t.Run("unreachable broker", func(t *testing.T) {
		rep, err := SelfTest(t.Context(), selfTestConfig(deadURL, probe, &fakeOfferPeers{}, &okDialer{}))
		if err != nil {
			t.Fatal(err)
		}
		if c := checkNamed(t, rep, "broker"); c.Status != CheckFail || !strings.Contains(c.Fix, "refused") {
			t.Errorf("broker check %+v", c)
		}
		if rep.OK() || !strings.Contains(rep.String(), "NOT WORKING") {
			t.Errorf("report OK with a dead broker:\n%s", rep)
		}
	})
	brokerOK := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"Status":"incorrect relay pattern","NextPoll":3600000}`))
	}))
	defer brokerOK.Close()
	t.Run("unreachable relay", func(t *testing.T) {
		d := &okDialer{err: errors.New("connection refused")}
		rep, err := SelfTest(t.Context(), selfTestConfig(brokerOK.URL+"/", probe, &fakeOfferPeers{}, d))
		if err != nil {
			t.Fatal(err)
		}
		if c := checkNamed(t, rep, "relay"); c.Status != CheckFail || !strings.Contains(c.Detail, "relay.example") {
			t.Errorf("relay check %+v", c)
		}
		if c := checkNamed(t, rep, "broker"); c.Status != CheckOK {
			t.Errorf("broker check %+v", c)
		}
		if rep.OK() {
			t.Errorf("report OK with a dead relay:\n%s", rep)
		}
	})
	t.Run("restrictive NAT", func(t *testing.T) {
		pf := &fakeOfferPeers{open: context.DeadlineExceeded} // the probe's channel never opens
		rep, err := SelfTest(t.Context(), selfTestConfig(brokerOK.URL+"/", probe, pf, &okDialer{}))
		if err != nil {
			t.Fatal(err)
		}
		if c := checkNamed(t, rep, "NAT"); c.Status != CheckWarn || !strings.HasPrefix(c.Detail, "restricted") || c.Fix == "" {
			t.Errorf("NAT check %+v", c)
		}
		if !rep.OK() || rep.NATType != "restricted" || !strings.Contains(rep.String(), "unrestricted NAT only") {
			t.Errorf("report:\n%s", rep)
		}
	})
	t.Run("no peer factory", func(t *testing.T) {
		if _, err := SelfTest(t.Context(), selfTestConfig(brokerOK.URL+"/", probe, nil, &okDialer{})); !errors.Is(err, ErrNoPeerFactory) {
			t.Errorf("err %v", err)
		}
	})
}
