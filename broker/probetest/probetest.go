// Package probetest is the NAT probe service that proxies use to learn
// their NAT type (PROTOCOL.md §9). A proxy POSTs a WebRTC offer shaped like
// a broker's poll response; the service answers it like a proxy would and
// keeps its peer open for a while. The service runs behind a symmetric
// (address-dependent mapping) NAT, so the proxy's data channel opens only
// when the proxy's own NAT accepts packets from a peer it has not sent to
// first: "unrestricted". Otherwise the proxy times out: "restricted".
package probetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/sdpjson"
)

// Limits and timings.
const (
	// MaxBody bounds a request body, as the broker bounds its own.
	MaxBody = 100000
	// PeerLifetime is how long a probe peer waits for the proxy's data
	// channel; the proxy gives up after the same time.
	PeerLifetime = 20 * time.Second
	// AfterOpen is how long a peer stays up once its channel opened, so the
	// proxy surely sees the open before the close.
	AfterOpen = 5 * time.Second
	// GatherTimeout bounds ICE gathering for an answer.
	GatherTimeout = 5 * time.Second
	// DefaultMaxPeers bounds concurrent probe peers (each holds sockets).
	DefaultMaxPeers = 256
	// StubSid is the session id in every reply; proxies ignore it.
	StubSid = "stub-sid"
)

// Config configures a Handler.
type Config struct {
	// STUNURLs are the ICE servers used to gather a reflexive candidate.
	STUNURLs []string
	// KeepLocalAddresses keeps local-network candidates in answers (tests).
	KeepLocalAddresses bool
	// IncludeLoopback gathers loopback candidates too (tests).
	IncludeLoopback bool
	// MaxPeers bounds concurrent probes; 0 means DefaultMaxPeers.
	MaxPeers int
	// Logger receives the log; nil discards it.
	Logger *slog.Logger
}

// Handler serves POST /probe.
type Handler struct {
	cfg   Config
	api   *webrtc.API
	rtc   webrtc.Configuration
	log   *slog.Logger
	slots chan struct{}
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
}

// NewHandler returns a probe handler. Close it to release its peers.
func NewHandler(cfg Config) *Handler {
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	h := &Handler{cfg: cfg, api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), log: cfg.Logger}
	if len(cfg.STUNURLs) > 0 {
		h.rtc.ICEServers = []webrtc.ICEServer{{URLs: cfg.STUNURLs}}
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := cfg.MaxPeers
	if n <= 0 {
		n = DefaultMaxPeers
	}
	h.slots = make(chan struct{}, n)
	h.ctx, h.stop = context.WithCancel(context.Background())
	return h
}

// Close closes all probe peers and waits for them.
func (h *Handler) Close() error {
	h.stop()
	h.wg.Wait()
	return nil
}

// errBadRequest marks client errors (400).
var errBadRequest = errors.New("bad request")

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Allow-Headers", "Origin, Content-Type")
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "POST an offer", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	offer, err := parseRequest(body)
	if err != nil {
		h.log.Debug("bad probe request", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case h.slots <- struct{}{}:
	default:
		http.Error(w, "too many probes; try later", http.StatusServiceUnavailable)
		return
	}
	answer, err := h.answer(r.Context(), offer)
	if err != nil {
		<-h.slots
		h.log.Warn("probe failed", "err", err)
		http.Error(w, "WebRTC failure", http.StatusInternalServerError)
		return
	}
	reply, err := (&messages.ProxyAnswerRequest{Version: messages.ProxyVersion, Sid: StubSid, Answer: answer}).Encode()
	if err != nil {
		http.Error(w, "encoding failure", http.StatusInternalServerError)
		return
	}
	w.Write(reply)
}

// parseRequest extracts the offer SDP from a probe request: a proxy poll
// response with a client offer and no relay URL.
func parseRequest(body []byte) (string, error) {
	msg, err := messages.DecodeProxyPollResponse(body)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if msg.RelayURL != "" {
		return "", fmt.Errorf("%w: RelayURL must be empty", errBadRequest)
	}
	if msg.Offer == "" {
		return "", fmt.Errorf("%w: no offer", errBadRequest)
	}
	desc, err := sdpjson.Decode(msg.Offer)
	if err != nil {
		return "", fmt.Errorf("%w: offer: %w", errBadRequest, err)
	}
	if desc.Type != webrtc.SDPTypeOffer {
		return "", fmt.Errorf("%w: session description is a %s, not an offer", errBadRequest, desc.Type)
	}
	if desc.SDP == "" {
		return "", fmt.Errorf("%w: empty SDP", errBadRequest)
	}
	return desc.SDP, nil
}

// answer creates a peer for offer and returns the answer's SDP JSON. The
// peer lives on in the background for PeerLifetime, or AfterOpen after its
// channel opened; its slot is released then.
func (h *Handler) answer(ctx context.Context, offer string) (string, error) {
	pc, err := h.api.NewPeerConnection(h.rtc)
	if err != nil {
		return "", err
	}
	opened := make(chan struct{})
	var once sync.Once
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { once.Do(func() { close(opened) }) })
	})
	fail := func(err error) (string, error) {
		pc.Close()
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("set remote description: %w", err))
	}
	desc, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("create answer: %w", err))
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return fail(fmt.Errorf("set local description: %w", err))
	}
	t := time.NewTimer(GatherTimeout)
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return fail(ctx.Err())
	}
	t.Stop()
	ld := pc.LocalDescription()
	if ld == nil {
		return fail(errors.New("no local description"))
	}
	sdp := ld.SDP
	sdp = iceaddr.Redact(sdp, h.cfg.KeepLocalAddresses)
	answer, err := sdpjson.Encode(&webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
	if err != nil {
		return fail(err)
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() { <-h.slots }()
		defer pc.Close()
		life := time.NewTimer(PeerLifetime)
		defer life.Stop()
		select {
		case <-opened:
			h.log.Debug("probe data channel opened")
			after := time.NewTimer(AfterOpen)
			defer after.Stop()
			select {
			case <-after.C:
			case <-life.C:
			case <-h.ctx.Done():
			}
		case <-life.C:
		case <-h.ctx.Done():
		}
	}()
	return answer, nil
}
