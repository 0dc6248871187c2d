package utlsrt

import (
	"fmt"
	"slices"

	utls "github.com/refraction-networking/utls"

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
