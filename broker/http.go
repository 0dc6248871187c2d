package broker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/snowfall-pt/snowfall/broker/ratelimit"
	"github.com/snowfall-pt/snowfall/common/amp"
	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/namematcher"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

// Header values shared by every response; net/http never modifies them.
var (
	hdrOrigin      = []string{"*"}
	hdrAllowHeader = []string{"Origin, X-Session-ID"}
	hdrTextPlain   = []string{"text/plain; charset=utf-8"}
	hdrTextHTML    = []string{"text/html"}
	hdrAMPCache    = []string{"max-age=15"}
)

const robotsTxt = "User-agent: *\nDisallow: /\n"

// Handler returns the broker's HTTP handler with every endpoint of
// PROTOCOL.md §3.1.
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/client", b.cors(b.serveClient))
	mux.Handle("/amp/client/", b.cors(b.serveAMP))
	mux.Handle("/proxy", b.cors(b.serveProxy))
	mux.Handle("/answer", b.cors(b.serveAnswer))
	mux.Handle("/debug", b.cors(b.serveDebug))
	mux.Handle("/metrics", b.cors(b.serveMetrics))
	mux.Handle("/prometheus", promhttp.HandlerFor(b.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = hdrTextPlain
		io.WriteString(w, robotsTxt)
	})
	return mux
}

// cors adds the CORS headers browser proxies need and answers preflight
// requests. The HTTP method is otherwise not checked, as in the reference.
func (b *Broker) cors(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = hdrOrigin
		h["Access-Control-Allow-Headers"] = hdrAllowHeader
		if r.Method == http.MethodOptions {
			return
		}
		f(w, r)
	})
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the request body, at most limit bytes. The caller
// returns the buffer with putBuf.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		putBuf(buf)
		return nil, err
	}
	return buf, nil
}

// readBodyOr400 reads the body, answering 400 (and counting an oversized
// body) when that fails.
func (b *Broker) readBodyOr400(w http.ResponseWriter, r *http.Request, endpoint string, limit int64) *bytes.Buffer {
	buf, err := readBody(w, r, limit)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			b.refused.add(endpoint, refusedBodySize)
		}
		replyStatus(w, http.StatusBadRequest)
		return nil
	}
	return buf
}

// allow applies limiter l to the request's source, answering 429 when the
// source is over its rate.
func (b *Broker) allow(w http.ResponseWriter, l *ratelimit.Limiter, endpoint string, addr netip.Addr) bool {
	ok, retry := l.Allow(addr, time.Now())
	if !ok {
		b.refused.add(endpoint, refusedRateLimit)
		tooMany(w, retry)
	}
	return ok
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 2*MaxBodySize {
		bufPool.Put(buf)
	}
}

// reply writes a plain-text response with an explicit length (the reference
// lets net/http sniff the same content type).
func reply(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrTextPlain
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

func replyStatus(w http.ResponseWriter, status int) {
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(status)
}

// errBridgeUnknown reports a client asking for a bridge not in the list;
// like the 2.5.1 reference it becomes HTTP 500.
var errBridgeUnknown = errors.New(messages.StrBridgeUnknown)

// clientOutcome is how a client poll ended, for the legacy format's status.
type clientOutcome uint8

const (
	outcomeAnswer clientOutcome = iota
	outcomeNoProxy
	outcomeTimeout
	outcomeDecodeError
)

// clientPoll matches a decoded client poll with a proxy and waits for the
// proxy's answer.
func (b *Broker) clientPoll(ctx context.Context, req *messages.ClientPollRequest) (*messages.ClientPollResponse, clientOutcome, error) {
	fp, err := bridgefingerprint.Parse(req.Fingerprint)
	if err != nil {
		return &messages.ClientPollResponse{Error: messages.ErrBadFingerprint.Error()}, outcomeDecodeError, nil
	}
	if err := b.checkSDP(req.Offer, "offer"); err != nil {
		reason := refusedSDPInvalid
		if errors.Is(err, errSDPTooLarge) {
			reason = refusedSDPSize
		}
		b.refused.add("client", reason)
		return &messages.ClientPollResponse{Error: "offer: " + err.Error()}, outcomeDecodeError, nil
	}
	bridge, ok := b.bridges.Load().Lookup(fp)
	if !ok {
		return nil, 0, errBridgeUnknown
	}
	nat := natClassOf(req.NAT)
	w := b.m.match(nat)
	if w == nil {
		b.metrics.clientDenied.Add(1)
		if nat == natUnrestricted {
			b.metrics.clientUnrestrictedDenied.Add(1)
		} else {
			b.metrics.clientRestrictedDenied.Add(1)
		}
		b.metrics.clientPoll.inc(int(nat), statusDenied)
		return &messages.ClientPollResponse{Error: messages.StrNoProxies}, outcomeNoProxy, nil
	}
	b.metrics.clientMatch.Add(1)
	b.metrics.clientPoll.inc(int(nat), statusMatched)
	b.deliver(w, &offer{sdp: req.Offer, nat: natNames[nat], relayURL: bridge.WebSocketAddress})

	t := time.NewTimer(b.cfg.ClientTimeout)
	defer t.Stop()
	var answer string
	select {
	case answer = <-w.answer:
	case <-t.C:
		if !b.m.finishSession(w) {
			answer = <-w.answer // it arrived just now
		}
	case <-ctx.Done():
		// The client hung up; nobody reads the reply.
		if !b.m.finishSession(w) {
			<-w.answer
		}
		return &messages.ClientPollResponse{Error: messages.StrTimedOut}, outcomeTimeout, nil
	}
	if answer == "" {
		return &messages.ClientPollResponse{Error: messages.StrTimedOut}, outcomeTimeout, nil
	}
	return &messages.ClientPollResponse{Answer: answer}, outcomeAnswer, nil
}

func (b *Broker) serveClient(w http.ResponseWriter, r *http.Request) {
	if !b.allow(w, b.clientLimit, "client", b.remoteAddr(r)) {
		return
	}
	buf := b.readBodyOr400(w, r, "client", MaxBodySize)
	if buf == nil {
		return
	}
	body := buf.Bytes()
	var req *messages.ClientPollRequest
	var err error
	legacy := len(body) > 0 && body[0] == '{'
	if legacy {
		// A bare offer from a pre-1.0 client: NAT type in a header, the
		// default bridge, and plain HTTP statuses for the outcome.
		nat, err := nattype.Parse(r.Header.Get("Snowflake-NAT-Type"))
		if err != nil {
			putBuf(buf)
			replyStatus(w, http.StatusBadRequest)
			return
		}
		req = &messages.ClientPollRequest{Offer: string(body), NAT: nat, Fingerprint: bridgefingerprint.Default}
		putBuf(buf)
	} else {
		req, err = messages.DecodeClientPollRequest(body)
		putBuf(buf)
		if err != nil {
			b.writeClientResponse(w, &messages.ClientPollResponse{Error: err.Error()})
			return
		}
	}
	resp, outcome, err := b.clientPoll(r.Context(), req)
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	if !legacy {
		b.writeClientResponse(w, resp)
		return
	}
	switch outcome {
	case outcomeAnswer:
		reply(w, http.StatusOK, []byte(resp.Answer))
	case outcomeNoProxy:
		replyStatus(w, http.StatusServiceUnavailable)
	case outcomeTimeout:
		replyStatus(w, http.StatusGatewayTimeout)
	default:
		replyStatus(w, http.StatusBadRequest)
	}
}

func (b *Broker) writeClientResponse(w http.ResponseWriter, resp *messages.ClientPollResponse) {
	out, err := resp.Encode()
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	reply(w, http.StatusOK, out)
}

// serveAMP answers client polls that arrive through an AMP cache: the poll
// is in the URL path and the reply is armored in an AMP HTML page.
func (b *Broker) serveAMP(w http.ResponseWriter, r *http.Request) {
	if !b.allow(w, b.clientLimit, "client", b.remoteAddr(r)) {
		return
	}
	var resp *messages.ClientPollResponse
	data, err := amp.DecodePath(strings.TrimPrefix(r.URL.Path, "/amp/client/"))
	if err != nil {
		resp = &messages.ClientPollResponse{Error: "cannot decode URL path"}
	} else if req, err := messages.DecodeClientPollRequest(data); err != nil {
		resp = &messages.ClientPollResponse{Error: err.Error()}
	} else if resp, _, err = b.clientPoll(r.Context(), req); err != nil {
		// An AMP cache turns this into a 404 for the client.
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	payload, err := resp.Encode()
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	var page bytes.Buffer
	enc, err := amp.NewArmorEncoder(&page)
	if err == nil {
		_, err = enc.Write(payload)
	}
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrTextHTML
	h["Cache-Control"] = hdrAMPCache
	h["Content-Length"] = []string{strconv.Itoa(page.Len())}
	w.WriteHeader(http.StatusOK)
	w.Write(page.Bytes())
}

// pollReply encodes a proxy poll reply.
func pollReply(status string, o *offer, nextPoll int) []byte {
	resp := messages.ProxyPollResponse{Status: status, NextPoll: nextPoll}
	if o != nil {
		resp.Offer, resp.NAT, resp.RelayURL = o.sdp, o.nat, o.relayURL
	}
	out, err := resp.Encode()
	if err != nil {
		return nil
	}
	return out
}

func (b *Broker) serveProxy(w http.ResponseWriter, r *http.Request) {
	addr := b.remoteAddr(r)
	if !b.allow(w, b.proxyLimit, "proxy", addr) {
		return
	}
	buf := b.readBodyOr400(w, r, "proxy", maxProxyPollBody)
	if buf == nil {
		return
	}
	req, err := messages.DecodeProxyPollRequest(buf.Bytes())
	putBuf(buf)
	if err != nil {
		replyStatus(w, http.StatusBadRequest)
		return
	}
	// The Sid is kept while the poll is held and after a match, so it is
	// bounded by itself; the body bound covers the other fields.
	if len(req.Sid) > b.cfg.MaxSidBytes {
		b.refused.add("proxy", refusedSidSize)
		replyStatus(w, http.StatusBadRequest)
		return
	}
	if req.AcceptedRelayPattern != nil && len(*req.AcceptedRelayPattern) > maxRelayPatternBytes {
		b.refused.add("proxy", refusedPatternSize)
		replyStatus(w, http.StatusBadRequest)
		return
	}
	nat := natClassOf(req.NAT)
	ptype := proxyTypeIndex(req.Type)
	b.metrics.proxySeen(addr, ptype, nat)
	if b.cfg.OnProxyAddr != nil {
		b.cfg.OnProxyAddr(addr)
	}

	pattern := req.AcceptedRelayPattern
	if pattern == nil {
		b.metrics.pollWithoutRelay.Add(1)
		b.metrics.withoutRelay.inc(int(nat), int(ptype))
		if b.cfg.DefaultRelayPattern != "" {
			pattern = &b.cfg.DefaultRelayPattern
		}
	} else {
		b.metrics.pollWithRelay.Add(1)
		b.metrics.withRelay.inc(int(nat), int(ptype))
	}
	if pattern == nil || !namematcher.New(*pattern).IsSupersetOf(b.allowed) {
		b.metrics.pollRejected.Add(1)
		b.metrics.rejectedRelay.inc(int(nat), int(ptype))
		reply(w, http.StatusOK, pollReply(messages.StatusIncorrectRelayPattern, nil, int(RejectedPollInterval/time.Millisecond)))
		return
	}
	if b.closing.Load() {
		b.noMatch(w, nat)
		return
	}

	wt := &waiter{sid: req.Sid, clients: req.Clients, nat: nat, ptype: ptype, index: -1}
	if pk := parkerFrom(r.Context()); pk != nil && r.ProtoAtLeast(1, 1) && !r.Close {
		if p := pk.park(w); p != nil {
			wt.parked = p
		}
	}
	if wt.parked == nil {
		wt.res = make(chan *offer, 1)
	}
	replaced, err := b.m.enqueue(wt, b.cfg.ProxyTimeout, func() {
		if b.m.expire(wt) {
			b.deliver(wt, nil)
		}
	})
	if replaced != nil {
		replaced.timer.Stop()
		b.deliver(replaced, nil)
	}
	if err != nil {
		status := http.StatusOK
		if errors.Is(err, errSidBusy) {
			status = http.StatusBadRequest
		}
		if wt.parked != nil {
			var body []byte
			if status == http.StatusOK {
				b.countIdle(nat)
				body = pollReply(messages.StatusNoMatch, nil, b.nextPoll(nat))
			}
			go b.finishParked(wt, status, body)
			return
		}
		if status == http.StatusOK {
			b.noMatch(w, nat)
		} else {
			replyStatus(w, status)
		}
		return
	}
	if wt.parked != nil {
		return // the connection now waits without this goroutine
	}
	var o *offer
	select {
	case o = <-wt.res:
	case <-r.Context().Done():
		if b.m.expire(wt) {
			wt.timer.Stop()
			return
		}
		if o = <-wt.res; o != nil {
			// Matched just as the proxy left: let the client go at once.
			b.m.abandon(wt)
		}
		return
	}
	if o == nil {
		b.noMatch(w, nat)
		return
	}
	reply(w, http.StatusOK, pollReply(messages.StatusMatch, o, b.nextPoll(nat)))
}

func (b *Broker) countIdle(nat natClass) {
	b.metrics.proxyIdle.Add(1)
	b.metrics.proxyPoll.inc(int(nat), statusIdle)
}

func (b *Broker) noMatch(w http.ResponseWriter, nat natClass) {
	b.countIdle(nat)
	reply(w, http.StatusOK, pollReply(messages.StatusNoMatch, nil, b.nextPoll(nat)))
}

// deliver ends a held proxy poll with o, or with "no match" when o is nil.
// Exactly one caller delivers to each waiter: the one that took it out of
// its pool.
func (b *Broker) deliver(w *waiter, o *offer) {
	if o != nil {
		w.timer.Stop()
		b.metrics.proxyPoll.inc(int(w.nat), statusMatched)
	}
	if w.parked == nil {
		w.res <- o
		return
	}
	var body []byte
	if o == nil {
		b.countIdle(w.nat)
		body = pollReply(messages.StatusNoMatch, nil, b.nextPoll(w.nat))
	} else {
		body = pollReply(messages.StatusMatch, o, b.nextPoll(w.nat))
	}
	go func() {
		if !b.finishParked(w, http.StatusOK, body) && o != nil {
			b.m.abandon(w)
		}
	}()
}

func (b *Broker) serveAnswer(w http.ResponseWriter, r *http.Request) {
	if !b.allow(w, b.proxyLimit, "answer", b.remoteAddr(r)) {
		return
	}
	buf := b.readBodyOr400(w, r, "answer", MaxBodySize)
	if buf == nil {
		return
	}
	req, err := messages.DecodeProxyAnswerRequest(buf.Bytes())
	putBuf(buf)
	if err != nil {
		replyStatus(w, http.StatusBadRequest)
		return
	}
	if len(req.Sid) > b.cfg.MaxSidBytes {
		b.refused.add("answer", refusedSidSize)
		replyStatus(w, http.StatusBadRequest)
		return
	}
	if err := b.checkSDP(req.Answer, "answer"); err != nil {
		reason := refusedSDPInvalid
		if errors.Is(err, errSDPTooLarge) {
			reason = refusedSDPSize
		}
		b.refused.add("answer", reason)
		reply(w, http.StatusBadRequest, []byte("answer: "+err.Error()+"\n"))
		return
	}
	status := messages.StatusClientGone
	if b.m.deliverAnswer(req.Sid, req.Answer) {
		status = messages.StatusSuccess
	}
	out, err := (&messages.ProxyAnswerResponse{Status: status}).Encode()
	if err != nil {
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	reply(w, http.StatusOK, out)
}

// serveDebug writes the pool summary of PROTOCOL.md §3.10.
func (b *Broker) serveDebug(w http.ResponseWriter, r *http.Request) {
	_, _, byType := b.m.counts()
	var total, unknown int
	var nat [numNAT]int
	var s strings.Builder
	for t, n := range byType {
		sum := n[0] + n[1] + n[2]
		total += sum
		for i := range nat {
			nat[i] += n[i]
		}
		if uint8(t) == unknownType {
			unknown = sum
		}
	}
	s.WriteString("current snowflakes available: " + strconv.Itoa(total) + "\n")
	for t, n := range byType {
		if sum := n[0] + n[1] + n[2]; uint8(t) != unknownType && sum > 0 {
			s.WriteString("\t" + proxyTypes[t] + " proxies: " + strconv.Itoa(sum) + "\n")
		}
	}
	s.WriteString("\tunknown proxies: " + strconv.Itoa(unknown))
	s.WriteString("\nNAT Types available:")
	s.WriteString("\n\trestricted: " + strconv.Itoa(nat[natRestricted]))
	s.WriteString("\n\tunrestricted: " + strconv.Itoa(nat[natUnrestricted]))
	s.WriteString("\n\tunknown: " + strconv.Itoa(nat[natUnknown]))
	reply(w, http.StatusOK, []byte(s.String()))
}

// serveMetrics returns the whole metrics log file.
func (b *Broker) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if b.cfg.MetricsLogPath == "" {
		replyStatus(w, http.StatusNotFound)
		return
	}
	f, err := os.Open(b.cfg.MetricsLogPath)
	if err != nil {
		b.log.Error("opening metrics log", "err", err)
		replyStatus(w, http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header()["Content-Type"] = hdrTextPlain
	io.Copy(w, f)
}
