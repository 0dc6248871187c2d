package utlsrt

import (
	"fmt"
	"net/http"
	"slices"

	utls "github.com/refraction-networking/utls"
	"golang.org/x/net/http2"

	"github.com/snowfall-pt/snowfall/internal/fingerprint"
)

// HelloChromium imitates the Chromium ClientHello captured into
// internal/fingerprint (chromium.json): the captured hello is the template,
// uTLS fills in fresh randoms and key shares (a real X25519MLKEM768 key
// among them) and, as BoringSSL does, the extension order is permuted
// again for every connection. It is the default for the rendezvous.
var HelloChromium = utls.ClientHelloID{Client: "SnowfallChromium", Version: "profile"}

// HelloNone selects Go's own crypto/tls instead of uTLS, for debugging.
// NewTransport in package rendezvous honours it; this package's
// RoundTripper does not accept it.
var HelloNone = utls.ClientHelloID{Client: "SnowfallNone", Version: "go"}

// DefaultName is the utls-imitate value used when none is given.
const DefaultName = "chromium"

// ChromiumVersion names the browser the HelloChromium profile came from.
func ChromiumVersion() (string, error) {
	p, err := fingerprint.Chromium()
	if err != nil {
		return "", err
	}
	return p.Browser, nil
}

// chromiumSpec builds a fresh ClientHelloSpec from the Chromium profile.
// Each connection needs its own: extensions carry per-handshake state. The
// profile was captured fetching an IP address; withSNI adds server_name, as
// Chromium does for a host name (the order is permuted anyway).
func chromiumSpec(withSNI bool) (*utls.ClientHelloSpec, error) {
	p, err := fingerprint.Chromium()
	if err != nil {
		return nil, err
	}
	raw, err := p.TLSClientHello()
	if err != nil {
		return nil, err
	}
	// Blunt mimicry passes extensions uTLS does not model (Chromium's
	// trust-anchor list, for one) through with their captured bytes.
	spec, err := (&utls.Fingerprinter{AllowBluntMimicry: true}).RawClientHello(raw)
	if err != nil {
		return nil, fmt.Errorf("utlsrt: the Chromium profile (%s): %w", p.Browser, err)
	}
	// uTLS keeps the captured GREASE ECH payload length; Chromium draws a
	// new one per connection.
	if lens := p.TLS.ECHGreasePayloads; len(lens) > 0 {
		for _, e := range spec.Extensions {
			if g, ok := e.(*utls.GREASEEncryptedClientHelloExtension); ok {
				g.CandidatePayloadLens = nil
				for _, l := range lens {
					g.CandidatePayloadLens = append(g.CandidatePayloadLens, uint16(l))
				}
			}
		}
	}
	if withSNI {
		// Before a trailing GREASE extension, which stays last.
		at := len(spec.Extensions)
		if at > 0 {
			if _, ok := spec.Extensions[at-1].(*utls.UtlsGREASEExtension); ok {
				at--
			}
		}
		spec.Extensions = slices.Insert(spec.Extensions, at, utls.TLSExtension(&utls.SNIExtension{}))
	}
	if p.TLS.PermutesExtensions {
		spec.Extensions = utls.ShuffleChromeTLSExtensions(spec.Extensions)
	}
	return spec, nil
}

// chromiumHTTP2 makes t open connections as the profile's browser does:
// its SETTINGS in its order, its connection window, its pseudo-header
// order and HEADERS priority (knobs of our x/net patch, see
// third_party/golang.org/x/net/SNOWFALL-PATCH.md).
func chromiumHTTP2(t *http2.Transport) error {
	p, err := fingerprint.Chromium()
	if err != nil {
		return err
	}
	h := p.HTTP2
	cfg := &http.HTTP2Config{MaxReceiveBufferPerConnection: int(h.WindowUpdate)}
	t.SettingsOrder = nil
	for _, s := range h.Settings {
		id := http2.SettingID(s.ID)
		switch id {
		case http2.SettingHeaderTableSize:
			cfg.MaxDecoderHeaderTableSize = int(s.Val)
		case http2.SettingEnablePush:
			if s.Val != 0 {
				return fmt.Errorf("utlsrt: %s enables server push, which Go cannot", p.Browser)
			}
		case http2.SettingInitialWindowSize:
			cfg.MaxReceiveBufferPerStream = int(s.Val)
		case http2.SettingMaxFrameSize:
			cfg.MaxReadFrameSize = int(s.Val)
		case http2.SettingMaxHeaderListSize:
			t.MaxHeaderListSize = s.Val
		default:
			return fmt.Errorf("utlsrt: %s sends HTTP/2 setting %v, which Go cannot", p.Browser, id)
		}
		t.SettingsOrder = append(t.SettingsOrder, id)
	}
	t.Config = cfg
	t.PseudoHeaderOrder = h.PseudoHeaderOrder
	t.HeaderOrder = h.POSTHeaderOrder
	t.HeadersPriority = &http2.PriorityParam{
		StreamDep: h.PriorityStreamDep, Exclusive: h.PriorityExclusive, Weight: h.PriorityWeight,
	}
	return nil
}
