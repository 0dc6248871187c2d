// Package fingerprint holds the browser handshakes Snowfall imitates, as
// data: chromium.json was captured from the Chromium installed on the
// testbed by `make fingerprints` (internal/fingerprint/cmd/snowfall-fingerprints)
// and names the browser version it came from. The rendezvous client builds
// its TLS ClientHello from it; tests compare our handshakes with it.
package fingerprint

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
)

//go:embed chromium.json
var chromiumJSON []byte

// Hex16 is a 16-bit code point written as four hex digits in JSON, the way
// the specs and Wireshark show them. GREASE values are written as "0a0a".
type Hex16 uint16

// String writes h as four hex digits.
func (h Hex16) String() string { return fmt.Sprintf("%04x", uint16(h)) }

// MarshalJSON implements json.Marshaler.
func (h Hex16) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprintf("%04x", uint16(h))) }

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex16) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil || len(s) != 4 {
		return fmt.Errorf("fingerprint: %q is not four hex digits", s)
	}
	*h = Hex16(v)
	return nil
}

// Hex16s converts a list.
func Hex16s(vs []uint16) []Hex16 {
	out := make([]Hex16, len(vs))
	for i, v := range vs {
		out[i] = Hex16(v)
	}
	return out
}

// Uint16s converts a list back.
func Uint16s(hs []Hex16) []uint16 {
	out := make([]uint16, len(hs))
	for i, h := range hs {
		out[i] = uint16(h)
	}
	return out
}

// Profile is one browser's handshakes.
type Profile struct {
	// Browser is what `chromium --version` printed.
	Browser string `json:"browser"`
	// Captured is the capture's date (RFC 3339).
	Captured    string      `json:"captured"`
	TLS         TLS         `json:"tls"`
	HTTP2       HTTP2       `json:"http2"`
	DTLSClient  DTLSClient  `json:"dtls_client"`
	DTLSServer  DTLSServer  `json:"dtls_server"`
	Certificate Certificate `json:"certificate"`
}

// TLS is the browser's TLS ClientHello to an https:// URL whose host is an
// IP address (so without SNI; a name adds server_name).
type TLS struct {
	// ClientHello is the TLS record carrying the hello, as captured, in
	// hex. uTLS builds our hello from it.
	ClientHello string `json:"client_hello"`
	JA4         string `json:"ja4"`
	// RecordVersion is the record layer's version.
	RecordVersion Hex16 `json:"record_version"`
	// The lists below write every GREASE value as 0a0a.
	CipherSuites []Hex16 `json:"cipher_suites"`
	// Extensions is the set of extension types, sorted: the order is
	// permuted per connection when PermutesExtensions.
	Extensions          []Hex16  `json:"extensions"`
	PermutesExtensions  bool     `json:"permutes_extensions"`
	SupportedGroups     []Hex16  `json:"supported_groups"`
	KeyShareGroups      []Hex16  `json:"key_share_groups"`
	SignatureAlgorithms []Hex16  `json:"signature_algorithms"`
	SupportedVersions   []Hex16  `json:"supported_versions"`
	ALPN                []string `json:"alpn"`
	// ECHGreasePayloads are the lengths (before the AEAD's 16 bytes) the
	// GREASE encrypted_client_hello payload is drawn from, one per
	// connection: BoringSSL's set, which the capture checks every
	// observed payload against.
	ECHGreasePayloads []int `json:"ech_grease_payloads"`
}

// HTTP2Setting is one SETTINGS entry.
type HTTP2Setting struct {
	ID  uint16 `json:"id"`
	Val uint32 `json:"val"`
}

// HTTP2 is how the browser opens an HTTP/2 connection.
type HTTP2 struct {
	Settings []HTTP2Setting `json:"settings"`
	// WindowUpdate is the connection window increment sent after SETTINGS.
	WindowUpdate uint32 `json:"window_update"`
	// PseudoHeaderOrder is the first request's pseudo-header order.
	PseudoHeaderOrder []string `json:"pseudo_header_order"`
	// Priority is the first HEADERS frame's priority field.
	PriorityExclusive bool   `json:"priority_exclusive"`
	PriorityStreamDep uint32 `json:"priority_stream_dep"`
	// PriorityWeight is the field's value (the weight minus one).
	PriorityWeight uint8 `json:"priority_weight"`
	// POSTHeaderOrder is the header order of a POST a page's script sent
	// (fetch), the kind of request a rendezvous poll is.
	POSTHeaderOrder []string `json:"post_header_order"`
	// UserAgent is the browser's User-Agent, with the headless marker
	// ("HeadlessChrome/") written as a normal browser's ("Chrome/").
	UserAgent string `json:"user_agent"`
}

// DTLSClient is the browser's DTLS ClientHello (the WebRTC answerer).
type DTLSClient struct {
	JA4 string `json:"ja4"`
	// JA3Sorted is the JA3 string with its extension list sorted.
	JA3Sorted           string  `json:"ja3_sorted"`
	RecordVersion       Hex16   `json:"record_version"`
	LegacyVersion       Hex16   `json:"legacy_version"`
	HelloSize           int     `json:"hello_size"`
	Datagrams           []int   `json:"datagrams"`
	CipherSuites        []Hex16 `json:"cipher_suites"`
	Extensions          []Hex16 `json:"extensions"`
	PermutesExtensions  bool    `json:"permutes_extensions"`
	SupportedGroups     []Hex16 `json:"supported_groups"`
	KeyShareGroups      []Hex16 `json:"key_share_groups"`
	KeyShareSizes       []int   `json:"key_share_sizes"`
	SignatureAlgorithms []Hex16 `json:"signature_algorithms"`
	SRTPProfiles        []Hex16 `json:"srtp_profiles"`
	SupportedVersions   []Hex16 `json:"supported_versions"`
}

// DTLSServer is the browser's DTLS ServerHello to a 1.3 peer (the
// offerer), and what follows it.
type DTLSServer struct {
	JA4S         string  `json:"ja4s"`
	Version      Hex16   `json:"version"`
	CipherSuite  Hex16   `json:"cipher_suite"`
	Extensions   []Hex16 `json:"extensions"`
	KeyShareSize int     `json:"key_share_size"`
	HelloVerify  bool    `json:"hello_verify_request"`
	HelloRetry   bool    `json:"hello_retry_request"`
	// FirstFlightCounts are the handshake records in each of the first
	// three flights (client hello, server flight, client flight).
	FirstFlightCounts []int `json:"first_flight_records"`
}

// Certificate is the shape of the browser's self-signed DTLS certificate.
type Certificate struct {
	CN            string `json:"cn"`
	CNType        string `json:"cn_type"`
	SerialBytes   int    `json:"serial_bytes"`
	ValidityHours int    `json:"validity_hours"`
	KeyType       string `json:"key_type"`
	Signature     string `json:"signature_algorithm"`
	DERSizeMin    int    `json:"der_size_min"`
	DERSizeMax    int    `json:"der_size_max"`
}

var (
	chromiumOnce sync.Once
	chromium     *Profile
	chromiumErr  error
)

// Chromium returns the embedded Chromium profile. The result is shared:
// callers must not modify it.
func Chromium() (*Profile, error) {
	chromiumOnce.Do(func() {
		chromium, chromiumErr = Parse(chromiumJSON)
	})
	return chromium, chromiumErr
}

// Parse decodes and checks a profile.
func Parse(b []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	if p.Browser == "" {
		return nil, fmt.Errorf("fingerprint: profile names no browser")
	}
	if _, err := p.TLSClientHello(); err != nil {
		return nil, err
	}
	return &p, nil
}

// TLSClientHello returns the captured TLS ClientHello record.
func (p *Profile) TLSClientHello() ([]byte, error) {
	b, err := hex.DecodeString(p.TLS.ClientHello)
	if err != nil || len(b) < 5 || b[0] != 22 {
		return nil, fmt.Errorf("fingerprint: %s: the TLS ClientHello is not a hex TLS handshake record", p.Browser)
	}
	return b, nil
}

// Marshal encodes p the way chromium.json is written.
func (p *Profile) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
