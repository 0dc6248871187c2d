package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/nattype"
	"github.com/snowfall-pt/snowfall/common/sdpwire"
)

// natProbeOpenTimeout is how long the proxy waits for the probe's data
// channel: a channel that opens through the probe's symmetric NAT proves
// that this proxy's NAT lets unsolicited peers in (PROTOCOL.md §9).
const natProbeOpenTimeout = 20 * time.Second

// natProbeLabel is the data channel label Tor's proxy uses for the probe.
const natProbeLabel = "test"

// NATProbeResult is one NAT measurement.
type NATProbeResult struct {
	// Type is unrestricted or restricted.
	Type string
	// Offered reports whether WebRTC produced an offer at all.
	Offered bool
	// Reflexive reports whether the offer held a server-reflexive
	// candidate, i.e. whether a STUN server answered.
	Reflexive bool
}

// ProbeNAT measures the NAT type against the probe service at probeURL:
// it offers a data channel, posts the offer, applies the answer and waits
// up to 20 s for the channel to open. An error means no measurement (the
// caller keeps its previous value); a channel that does not open is
// restricted, not an error.
func ProbeNAT(ctx context.Context, pf PeerFactory, poster Poster, probeURL string, gatherTimeout time.Duration, keepLocal bool) (NATProbeResult, error) {
	var res NATProbeResult
	gctx, cancel := context.WithTimeout(ctx, gatherTimeout)
	off, err := pf.NewOfferer(gctx, natProbeLabel)
	cancel()
	if err != nil {
		return res, fmt.Errorf("NAT probe offer: %w", err)
	}
	defer off.Close()
	sdp := off.Offer()
	res.Offered = true
	res.Reflexive = hasReflexive(sdp)
	sdp = iceaddr.Redact(sdp, keepLocal)
	offer, err := sdpwire.Encode(sdpwire.Desc{Type: sdpwire.TypeOffer, SDP: sdp})
	if err != nil {
		return res, fmt.Errorf("NAT probe offer: %w", err)
	}
	// The probe takes a poll response carrying a client offer, as a broker
	// would send it, and replies with an answer as a proxy would send it.
	req := messages.ProxyPollResponse{Status: messages.StatusMatch, Offer: offer}
	body, err := req.Encode()
	if err != nil {
		return res, fmt.Errorf("NAT probe request: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	reply, err := poster.Post(pctx, probeURL, body)
	cancel()
	if err != nil {
		return res, fmt.Errorf("NAT probe service: %w", err)
	}
	ans, err := messages.DecodeProxyAnswerRequest(reply)
	if err != nil {
		return res, fmt.Errorf("NAT probe reply: %w", err)
	}
	desc, err := sdpwire.Decode(ans.Answer)
	if err != nil {
		return res, fmt.Errorf("NAT probe answer: %w", err)
	}
	if desc.Type != sdpwire.TypeAnswer {
		return res, fmt.Errorf("NAT probe answer: type %s", desc.Type)
	}
	if err := off.SetAnswer(desc.SDP); err != nil {
		return res, fmt.Errorf("NAT probe answer: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, natProbeOpenTimeout)
	defer cancel()
	err = off.WaitOpen(wctx)
	switch {
	case err == nil:
		res.Type = nattype.Unrestricted
	case ctx.Err() != nil:
		return res, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrPeerFailed):
		res.Type = nattype.Restricted
	default:
		return res, fmt.Errorf("NAT probe: %w", err)
	}
	return res, nil
}

// hasReflexive reports whether sdp has a server-reflexive candidate.
func hasReflexive(sdp string) bool {
	return strings.Contains(sdp, " typ srflx")
}

// nextNATType applies Tor's rule for a new measurement: an unknown result
// never overrides a known type.
func nextNATType(prev, measured string) string {
	if measured == nattype.Unknown && (prev == nattype.Restricted || prev == nattype.Unrestricted) {
		return prev
	}
	return measured
}
