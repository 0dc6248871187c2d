package capture

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/internal/fingerprint"
	"github.com/snowfall-pt/snowfall/internal/handshake"
)

// boringECHGrease are the pre-encryption lengths BoringSSL draws a GREASE
// ECH payload from (a random multiple of 32 in [128, 224]).
var boringECHGrease = []int{128, 160, 192, 224}

// echAEADOverhead is the AES-128-GCM tag Chromium's GREASE ECH adds.
const echAEADOverhead = 16

// grease writes every GREASE value as 0a0a, so lists compare across
// connections.
func grease(vs []uint16) []fingerprint.Hex16 {
	out := make([]fingerprint.Hex16, len(vs))
	for i, v := range vs {
		if handshake.IsGREASE(v) {
			v = 0x0a0a
		}
		out[i] = fingerprint.Hex16(v)
	}
	return out
}

func sortedSet(vs []uint16) []fingerprint.Hex16 {
	out := grease(vs)
	slices.Sort(out)
	return out
}

func shareGroups(ks []handshake.KeyShare) ([]uint16, []int) {
	var g []uint16
	var n []int
	for _, k := range ks {
		g = append(g, k.Group)
		n = append(n, len(k.Key))
	}
	return g, n
}

// Handshakes parses the DTLS flows of a capture.
func (r *Result) Handshakes() ([]*handshake.DTLSHandshake, error) { return Handshakes(r.DTLS) }

// Handshakes parses DTLS flows.
func Handshakes(flows []DTLSFlow) ([]*handshake.DTLSHandshake, error) {
	var out []*handshake.DTLSHandshake
	for i, f := range flows {
		ds := make([]handshake.Datagram, len(f.Datagrams))
		for j := range f.Datagrams {
			ds[j] = handshake.Datagram{FromClient: f.ClientToServer[j], Data: f.Datagrams[j]}
		}
		h, err := handshake.ParseDTLSHandshake(ds)
		if err != nil {
			return nil, fmt.Errorf("capture: DTLS connection %d: %w", i+1, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// TLSHellos parses the TLS ClientHellos of a capture.
func (r *Result) TLSHellos() ([]*handshake.TLSClientHello, error) {
	var out []*handshake.TLSClientHello
	for i, c := range r.TLS {
		ch, err := handshake.ParseTLSClientHello(c.Wire)
		if err != nil {
			return nil, fmt.Errorf("capture: TLS connection %d: %w", i+1, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// Profile derives the fingerprint profile from a capture.
func (r *Result) Profile(now time.Time) (*fingerprint.Profile, error) {
	p := &fingerprint.Profile{Browser: r.Version, Captured: now.UTC().Format(time.RFC3339)}

	hellos, err := r.TLSHellos()
	if err != nil {
		return nil, err
	}
	var preface, post *handshake.H2Preface
	for _, c := range r.TLS {
		if c.ALPN != "h2" || len(c.Plain) == 0 {
			continue
		}
		pr, err := handshake.ParseH2Preface(c.Plain)
		if err != nil {
			return nil, err
		}
		if pr.HeaderValues[":method"] == "POST" && post == nil {
			post = pr
		}
	}
	if post == nil {
		return nil, fmt.Errorf("capture: no HTTP/2 POST recorded")
	}
	for i, c := range r.TLS {
		if c.ALPN == "h2" && len(c.Plain) > 0 {
			if preface, err = handshake.ParseH2Preface(c.Plain); err != nil {
				return nil, err
			}
			ch := hellos[i]
			recs, _, _ := handshake.ParseTLSRecords(c.Wire)
			var raw []byte
			for _, rec := range recs[:ch.Records] {
				raw = append(raw, rec.Header...)
				raw = append(raw, rec.Fragment...)
			}
			g, _ := shareGroups(ch.KeyShares)
			p.TLS = fingerprint.TLS{
				ClientHello:         hex.EncodeToString(raw),
				JA4:                 ch.JA4(handshake.OverTCP),
				RecordVersion:       fingerprint.Hex16(ch.RecordVersion),
				CipherSuites:        grease(ch.CipherSuites),
				Extensions:          sortedSet(ch.ExtensionTypes()),
				SupportedGroups:     grease(ch.SupportedGroups),
				KeyShareGroups:      grease(g),
				SignatureAlgorithms: grease(ch.SignatureAlgorithms),
				SupportedVersions:   grease(ch.SupportedVersions),
				ALPN:                ch.ALPN,
			}
			break
		}
	}
	if preface == nil {
		return nil, fmt.Errorf("capture: no HTTP/2 connection recorded")
	}
	if len(hellos) < 2 {
		return nil, fmt.Errorf("capture: %d TLS connections; two are needed to see the extension order change", len(hellos))
	}
	for i, ch := range hellos {
		if n, _, ok := ch.ECHPayloadLen(); ok {
			if !slices.Contains(boringECHGrease, n-echAEADOverhead) {
				return nil, fmt.Errorf("capture: TLS connection %d: a GREASE ECH payload of %d bytes, not in %v+%d", i+1, n, boringECHGrease, echAEADOverhead)
			}
			p.TLS.ECHGreasePayloads = boringECHGrease
		}
	}
	for _, ch := range hellos[1:] {
		if !slices.Equal(grease(ch.ExtensionTypes()), grease(hellos[0].ExtensionTypes())) {
			p.TLS.PermutesExtensions = true
		}
	}
	p.HTTP2 = fingerprint.HTTP2{
		WindowUpdate:      preface.WindowUpdate,
		PseudoHeaderOrder: preface.PseudoHeaders,
		POSTHeaderOrder:   post.Headers,
		UserAgent:         strings.Replace(post.HeaderValues["user-agent"], "HeadlessChrome/", "Chrome/", 1),
	}
	for _, s := range preface.Settings {
		p.HTTP2.Settings = append(p.HTTP2.Settings, fingerprint.HTTP2Setting{ID: s.ID, Val: s.Val})
	}
	if pr := preface.Priority; pr != nil {
		p.HTTP2.PriorityExclusive, p.HTTP2.PriorityStreamDep, p.HTTP2.PriorityWeight = pr.Exclusive, pr.StreamDep, pr.Weight
	}

	hs, err := r.Handshakes()
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("capture: no DTLS handshake")
	}
	h := hs[0]
	ch := h.ClientHello
	g, n := shareGroups(ch.KeyShares)
	p.DTLSClient = fingerprint.DTLSClient{
		JA4:                 ch.JA4(handshake.OverDTLS),
		JA3Sorted:           ch.JA3().Sorted().String(),
		RecordVersion:       fingerprint.Hex16(h.FirstRecordVersion),
		LegacyVersion:       fingerprint.Hex16(ch.LegacyVersion),
		HelloSize:           h.HelloSize,
		Datagrams:           h.HelloDatagrams,
		CipherSuites:        grease(ch.CipherSuites),
		Extensions:          sortedSet(ch.ExtensionTypes()),
		SupportedGroups:     grease(ch.SupportedGroups),
		KeyShareGroups:      grease(g),
		KeyShareSizes:       n,
		SignatureAlgorithms: grease(ch.SignatureAlgorithms),
		SRTPProfiles:        grease(ch.SRTPProfiles),
		SupportedVersions:   grease(ch.SupportedVersions),
	}
	for _, o := range hs[1:] {
		if !slices.Equal(o.ClientHello.ExtensionTypes(), ch.ExtensionTypes()) {
			p.DTLSClient.PermutesExtensions = true
		}
	}
	sh := h.ServerHello
	if sh == nil {
		return nil, fmt.Errorf("capture: no DTLS ServerHello")
	}
	p.DTLSServer = fingerprint.DTLSServer{
		JA4S:        sh.JA4S(handshake.OverDTLS, ""),
		Version:     fingerprint.Hex16(sh.Version()),
		CipherSuite: fingerprint.Hex16(sh.CipherSuite),
		Extensions:  grease(sh.ExtensionTypes()),
		HelloVerify: h.HelloVerifyRequest != nil,
		HelloRetry:  h.HelloRetryRequest != nil,
	}
	if sh.KeyShare != nil {
		p.DTLSServer.KeyShareSize = len(sh.KeyShare.Key)
	}
	// Records per flight up to the client's Finished: hello, server
	// flight, client flight.
	for _, f := range h.Flights[:min(3, len(h.Flights))] {
		p.DTLSServer.FirstFlightCounts = append(p.DTLSServer.FirstFlightCounts, len(f.HandshakeRecords))
	}

	if len(r.Certificates) == 0 {
		return nil, fmt.Errorf("capture: no certificate reported")
	}
	for i, der := range r.Certificates {
		s, err := handshake.ParseCertShape(der)
		if err != nil {
			return nil, err
		}
		c := fingerprint.Certificate{
			CN: s.CN, CNType: s.CNType, SerialBytes: s.SerialBytes, ValidityHours: int(s.Validity.Hours()),
			KeyType: s.KeyType, Signature: s.SignatureAlgorithm, DERSizeMin: s.DERSize, DERSizeMax: s.DERSize,
		}
		if i == 0 {
			p.Certificate = c
			continue
		}
		q := &p.Certificate
		if c.CN != q.CN || c.CNType != q.CNType || c.ValidityHours != q.ValidityHours || c.KeyType != q.KeyType || c.Signature != q.Signature {
			return nil, fmt.Errorf("capture: certificates of one browser differ: %+v and %+v", *q, c)
		}
		q.SerialBytes = max(q.SerialBytes, c.SerialBytes)
		q.DERSizeMin, q.DERSizeMax = min(q.DERSizeMin, c.DERSizeMin), max(q.DERSizeMax, c.DERSizeMax)
	}
	return p, nil
}
