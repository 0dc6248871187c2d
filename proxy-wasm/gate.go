package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/snowfall-pt/snowfall/common/messages"
)

// maxPollBody bounds broker replies and poll requests read by the gate, as
// the core bounds them.
const maxPollBody = 100000

// noMatch is the reply the gate gives the core for a poll it keeps from the
// broker.
var noMatch = []byte(`{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`)

// pollHooks is what the gate asks and tells the controller.
type pollHooks interface {
	// beforePoll reports whether a poll may go to the broker now and, if
	// the NAT type in it must change, the type to report instead.
	beforePoll() (ok bool, nat string)
	// pollFailed records a poll that got no valid reply.
	pollFailed(err error)
	// pollAnswered records the broker's reply (err is the decoding error,
	// e.g. a rejected relay pattern).
	pollAnswered(resp *messages.ProxyPollResponse, err error)
}

// gate is the HTTP transport of the core's broker client. It carries out
// the browser polling policy without a hook in the core: the core asks
// every proxy.MinPollInterval, and the gate lets a poll through to the
// broker only when the schedule says so; every other ask gets a local "no
// match". Failed polls are answered "no match" as well, so that the
// schedule alone decides when to try again (and the page's Retry button
// takes effect at the next ask). Replies pass through without NextPoll for
// the same reason. Requests other than polls (answers, the NAT probe) pass
// through untouched.
type gate struct {
	next    http.RoundTripper
	pollURL string
	hooks   pollHooks
}

func newGate(next http.RoundTripper, brokerURL string, hooks pollHooks) (*gate, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, fmt.Errorf("broker URL: %w", err)
	}
	// Resolved as the core resolves it.
	poll := u.ResolveReference(&url.URL{Path: "proxy"}).String()
	return &gate{next: next, pollURL: poll, hooks: hooks}, nil
}

// RoundTrip implements http.RoundTripper.
func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.String() != g.pollURL {
		return g.next.RoundTrip(req)
	}
	ok, nat := g.hooks.beforePoll()
	if !ok {
		if req.Body != nil {
			req.Body.Close()
		}
		return reply(req, noMatch), nil
	}
	if nat != "" {
		r, err := withNAT(req, nat)
		if err != nil {
			return nil, err
		}
		req = r
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		if req.Context().Err() != nil {
			// Stopped: not the broker's fault.
			return nil, err
		}
		g.hooks.pollFailed(err)
		return reply(req, noMatch), nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPollBody+1))
	resp.Body.Close()
	switch {
	case err != nil:
		if req.Context().Err() != nil {
			return nil, err
		}
		g.hooks.pollFailed(fmt.Errorf("reading broker reply: %w", err))
		return reply(req, noMatch), nil
	case resp.StatusCode != http.StatusOK:
		g.hooks.pollFailed(fmt.Errorf("broker answered %s", resp.Status))
		return reply(req, noMatch), nil
	case len(body) > maxPollBody:
		g.hooks.pollFailed(errors.New("broker reply too large"))
		return reply(req, noMatch), nil
	}
	pr, derr := messages.DecodeProxyPollResponse(body)
	if pr == nil {
		g.hooks.pollFailed(fmt.Errorf("bad broker reply: %w", derr))
		return reply(req, noMatch), nil
	}
	g.hooks.pollAnswered(pr, derr)
	if derr == nil && pr.NextPoll != 0 {
		// The schedule has taken the hint into account; the core need
		// not.
		strip := *pr
		strip.NextPoll = 0
		body = strip.AppendJSON(nil)
	}
	return reply(req, body), nil
}

// reply makes a 200 response with body.
func reply(req *http.Request, body []byte) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// withNAT returns req with the NAT type of its poll replaced.
func withNAT(req *http.Request, nat string) (*http.Request, error) {
	if req.Body == nil {
		return req, nil
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, maxPollBody+1))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(data) > maxPollBody {
		return nil, errors.New("poll request too large")
	}
	p, err := messages.DecodeProxyPollRequest(data)
	if err == nil && p.NAT != nat {
		p.NAT = nat
		data = p.AppendJSON(nil)
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return r, nil
}
