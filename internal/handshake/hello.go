package handshake

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Extension types used by the decoders.
const (
	ExtServerName          = 0x0000
	ExtSupportedGroups     = 0x000a
	ExtECPointFormats      = 0x000b
	ExtSignatureAlgorithms = 0x000d
	ExtUseSRTP             = 0x000e
	ExtALPN                = 0x0010
	ExtSupportedVersions   = 0x002b
	ExtPSKModes            = 0x002d
	ExtKeyShare            = 0x0033
)

// Extension is one hello extension, in the order sent.
type Extension struct {
	Type uint16
	Data []byte
}

// KeyShare is one key_share entry.
type KeyShare struct {
	Group uint16
	Key   []byte
}

// ClientHello is a parsed ClientHello body.
type ClientHello struct {
	DTLS          bool
	LegacyVersion uint16
	Random        []byte
	SessionID     []byte
	Cookie        []byte // DTLS only
	CipherSuites  []uint16
	Compression   []byte
	Extensions    []Extension

	// Decoded extensions (nil when absent).
	ServerName          string
	ALPN                []string
	SupportedGroups     []uint16
	ECPointFormats      []byte
	SignatureAlgorithms []uint16
	SupportedVersions   []uint16
	PSKModes            []byte
	KeyShares           []KeyShare
	SRTPProfiles        []uint16
	SRTPMKI             []byte
}

// ParseClientHello parses a ClientHello message body (without the
// handshake header). dtls selects the DTLS layout (a cookie after the
// session ID).
func ParseClientHello(body []byte, dtls bool) (*ClientHello, error) {
	s := cryptobyte.String(body)
	h := &ClientHello{DTLS: dtls}
	var sid, suites, comp cryptobyte.String
	if !s.ReadUint16(&h.LegacyVersion) || !s.ReadBytes(&h.Random, 32) || !s.ReadUint8LengthPrefixed(&sid) {
		return nil, fmt.Errorf("ClientHello: %w", ErrTruncated)
	}
	h.SessionID = sid
	if dtls {
		var cookie cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&cookie) {
			return nil, fmt.Errorf("ClientHello cookie: %w", ErrTruncated)
		}
		h.Cookie = cookie
	}
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites)%2 != 0 || !s.ReadUint8LengthPrefixed(&comp) {
		return nil, fmt.Errorf("ClientHello suites: %w", ErrMalformed)
	}
	for !suites.Empty() {
		var c uint16
		suites.ReadUint16(&c)
		h.CipherSuites = append(h.CipherSuites, c)
	}
	h.Compression = comp
	exts, err := parseExtensions(&s)
	if err != nil {
		return nil, fmt.Errorf("ClientHello: %w", err)
	}
	h.Extensions = exts
	for _, e := range exts {
		if err := h.decode(e); err != nil {
			return nil, fmt.Errorf("ClientHello extension %#04x: %w", e.Type, err)
		}
	}
	return h, nil
}

func parseExtensions(s *cryptobyte.String) ([]Extension, error) {
	if s.Empty() {
		return nil, nil
	}
	var all cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&all) || !s.Empty() {
		return nil, fmt.Errorf("extensions: %w", ErrMalformed)
	}
	var out []Extension
	seen := map[uint16]bool{}
	for !all.Empty() {
		var e Extension
		var data cryptobyte.String
		if !all.ReadUint16(&e.Type) || !all.ReadUint16LengthPrefixed(&data) {
			return nil, fmt.Errorf("extensions: %w", ErrTruncated)
		}
		if seen[e.Type] {
			return nil, fmt.Errorf("%w: extension %#04x twice", ErrMalformed, e.Type)
		}
		seen[e.Type] = true
		e.Data = data
		out = append(out, e)
	}
	return out, nil
}

func readUint16List(s *cryptobyte.String, out *[]uint16) bool {
	var l cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&l) || len(l)%2 != 0 {
		return false
	}
	*out = []uint16{}
	for !l.Empty() {
		var v uint16
		l.ReadUint16(&v)
		*out = append(*out, v)
	}
	return true
}

func (h *ClientHello) decode(e Extension) error {
	s := cryptobyte.String(e.Data)
	ok := true
	switch e.Type {
	case ExtServerName:
		var list cryptobyte.String
		ok = s.ReadUint16LengthPrefixed(&list)
		for ok && !list.Empty() {
			var typ uint8
			var name cryptobyte.String
			if ok = list.ReadUint8(&typ) && list.ReadUint16LengthPrefixed(&name); ok && typ == 0 {
				h.ServerName = string(name)
			}
		}
	case ExtALPN:
		var list cryptobyte.String
		ok = s.ReadUint16LengthPrefixed(&list)
		h.ALPN = []string{}
		for ok && !list.Empty() {
			var p cryptobyte.String
			if ok = list.ReadUint8LengthPrefixed(&p); ok {
				h.ALPN = append(h.ALPN, string(p))
			}
		}
	case ExtSupportedGroups:
		ok = readUint16List(&s, &h.SupportedGroups)
	case ExtSignatureAlgorithms:
		ok = readUint16List(&s, &h.SignatureAlgorithms)
	case ExtECPointFormats:
		var l cryptobyte.String
		ok = s.ReadUint8LengthPrefixed(&l)
		h.ECPointFormats = append([]byte{}, l...)
	case ExtPSKModes:
		var l cryptobyte.String
		ok = s.ReadUint8LengthPrefixed(&l)
		h.PSKModes = append([]byte{}, l...)
	case ExtSupportedVersions:
		var l cryptobyte.String
		ok = s.ReadUint8LengthPrefixed(&l) && len(l)%2 == 0
		h.SupportedVersions = []uint16{}
		for ok && !l.Empty() {
			var v uint16
			l.ReadUint16(&v)
			h.SupportedVersions = append(h.SupportedVersions, v)
		}
	case ExtKeyShare:
		var l cryptobyte.String
		ok = s.ReadUint16LengthPrefixed(&l)
		h.KeyShares = []KeyShare{}
		for ok && !l.Empty() {
			var ks KeyShare
			var key cryptobyte.String
			if ok = l.ReadUint16(&ks.Group) && l.ReadUint16LengthPrefixed(&key); ok {
				ks.Key = key
				h.KeyShares = append(h.KeyShares, ks)
			}
		}
	case ExtUseSRTP:
		var mki cryptobyte.String
		ok = readUint16List(&s, &h.SRTPProfiles) && s.ReadUint8LengthPrefixed(&mki)
		h.SRTPMKI = mki
	default:
		return nil
	}
	if !ok || !s.Empty() {
		return ErrMalformed
	}
	return nil
}

// ExtensionTypes returns the extension types in the order sent.
func (h *ClientHello) ExtensionTypes() []uint16 { return extTypes(h.Extensions) }

func extTypes(exts []Extension) []uint16 {
	out := make([]uint16, len(exts))
	for i, e := range exts {
		out[i] = e.Type
	}
	return out
}

// MaxVersion is the highest non-GREASE version offered: from
// supported_versions when present, else the legacy version.
func (h *ClientHello) MaxVersion() uint16 {
	if h.SupportedVersions == nil {
		return h.LegacyVersion
	}
	best := uint16(0)
	for _, v := range h.SupportedVersions {
		if IsGREASE(v) {
			continue
		}
		if best == 0 || newer(v, best) {
			best = v
		}
	}
	return best
}

// newer compares protocol versions; DTLS versions count down.
func newer(a, b uint16) bool {
	if a>>8 == 0xfe && b>>8 == 0xfe {
		return a < b
	}
	return a > b
}

// ServerHello is a parsed ServerHello body.
type ServerHello struct {
	LegacyVersion     uint16
	Random            []byte
	SessionID         []byte
	CipherSuite       uint16
	Compression       uint8
	Extensions        []Extension
	SelectedVersion   uint16 // from supported_versions, zero if absent
	KeyShare          *KeyShare
	HelloRetryRequest bool
}

// helloRetryRandom marks a ServerHello that is a HelloRetryRequest
// (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
var helloRetryRandom = sha256.Sum256([]byte("HelloRetryRequest"))

// ParseServerHello parses a ServerHello message body.
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	h := &ServerHello{}
	var sid cryptobyte.String
	if !s.ReadUint16(&h.LegacyVersion) || !s.ReadBytes(&h.Random, 32) || !s.ReadUint8LengthPrefixed(&sid) ||
		!s.ReadUint16(&h.CipherSuite) || !s.ReadUint8(&h.Compression) {
		return nil, fmt.Errorf("ServerHello: %w", ErrTruncated)
	}
	h.SessionID = sid
	h.HelloRetryRequest = bytes.Equal(h.Random, helloRetryRandom[:])
	exts, err := parseExtensions(&s)
	if err != nil {
		return nil, fmt.Errorf("ServerHello: %w", err)
	}
	h.Extensions = exts
	for _, e := range exts {
		es := cryptobyte.String(e.Data)
		switch e.Type {
		case ExtSupportedVersions:
			if !es.ReadUint16(&h.SelectedVersion) || !es.Empty() {
				return nil, fmt.Errorf("ServerHello supported_versions: %w", ErrMalformed)
			}
		case ExtKeyShare:
			ks := &KeyShare{}
			var key cryptobyte.String
			if !es.ReadUint16(&ks.Group) {
				return nil, fmt.Errorf("ServerHello key_share: %w", ErrMalformed)
			}
			// A HelloRetryRequest names only the group.
			if !es.Empty() && (!es.ReadUint16LengthPrefixed(&key) || !es.Empty()) {
				return nil, fmt.Errorf("ServerHello key_share: %w", ErrMalformed)
			}
			ks.Key = key
			h.KeyShare = ks
		}
	}
	return h, nil
}

// Version is the negotiated version: supported_versions when present, else
// the legacy version.
func (h *ServerHello) Version() uint16 {
	if h.SelectedVersion != 0 {
		return h.SelectedVersion
	}
	return h.LegacyVersion
}

// ExtensionTypes returns the extension types in the order sent.
func (h *ServerHello) ExtensionTypes() []uint16 { return extTypes(h.Extensions) }

// DowngradeMarker reports the RFC 8446 §4.1.3 sentinel in the last 8 bytes
// of server_random ("DOWNGRD" and 0x01 for 1.2): a 1.3-capable server
// answering a 1.2-only client.
func (h *ServerHello) DowngradeMarker() string {
	tail := h.Random[24:]
	switch {
	case bytes.Equal(tail, []byte("DOWNGRD\x01")):
		return "tls12"
	case bytes.Equal(tail, []byte("DOWNGRD\x00")):
		return "tls11"
	}
	return ""
}

// HelloVerifyRequest is a DTLS 1.2 cookie exchange message.
type HelloVerifyRequest struct {
	Version uint16
	Cookie  []byte
}

// ParseHelloVerifyRequest parses a HelloVerifyRequest body.
func ParseHelloVerifyRequest(body []byte) (*HelloVerifyRequest, error) {
	s := cryptobyte.String(body)
	h := &HelloVerifyRequest{}
	var cookie cryptobyte.String
	if !s.ReadUint16(&h.Version) || !s.ReadUint8LengthPrefixed(&cookie) || !s.Empty() {
		return nil, fmt.Errorf("HelloVerifyRequest: %w", ErrMalformed)
	}
	h.Cookie = cookie
	return h, nil
}

// IsGREASE reports a GREASE value (RFC 8701): 0x?a?a with equal bytes.
func IsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// ExtECH is encrypted_client_hello (draft-ietf-tls-esni); browsers send a
// GREASE one when the server has no ECH config.
const ExtECH = 0xfe0d

// ECHPayloadLen returns the length of the outer ECH extension's payload
// (the encrypted inner hello or, in GREASE, random bytes of a length
// drawn from a small set) and the extension's total length on the wire.
func (h *ClientHello) ECHPayloadLen() (payload, extLen int, ok bool) {
	for _, e := range h.Extensions {
		if e.Type != ExtECH {
			continue
		}
		s := cryptobyte.String(e.Data)
		var typ, cfg uint8
		var kdf, aead uint16
		var enc, p cryptobyte.String
		if !s.ReadUint8(&typ) || typ != 0 || !s.ReadUint16(&kdf) || !s.ReadUint16(&aead) || !s.ReadUint8(&cfg) ||
			!s.ReadUint16LengthPrefixed(&enc) || !s.ReadUint16LengthPrefixed(&p) || !s.Empty() {
			return 0, 0, false
		}
		return len(p), 4 + len(e.Data), true
	}
	return 0, 0, false
}
