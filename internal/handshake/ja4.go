package handshake

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Transport of a handshake, the first character of JA4 and JA4S.
const (
	OverTCP  = 't'
	OverDTLS = 'd'
	OverQUIC = 'q'
)

// versionCode is JA4's two-character version.
func versionCode(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// alpnCode is JA4's two-character ALPN field.
func alpnCode(protos []string) string {
	if len(protos) == 0 || protos[0] == "" {
		return "00"
	}
	p := protos[0]
	first, last := p[0], p[len(p)-1]
	if alnum(first) && alnum(last) {
		return string([]byte{first, last})
	}
	h := hex.EncodeToString([]byte(p))
	return string([]byte{h[0], h[len(h)-1]})
}

func count2(n int) string { return fmt.Sprintf("%02d", min(n, 99)) }

func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

func hexList(vs []uint16) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%04x", v)
	}
	return strings.Join(parts, ",")
}

func withoutGREASE(vs []uint16) []uint16 {
	out := make([]uint16, 0, len(vs))
	for _, v := range vs {
		if !IsGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}

// JA4 is the FoxIO JA4 fingerprint of a ClientHello sent over transport
// (OverTCP, OverDTLS or OverQUIC).
func (h *ClientHello) JA4(transport byte) string {
	suites := withoutGREASE(h.CipherSuites)
	exts := withoutGREASE(h.ExtensionTypes())
	sni := byte('i')
	if slices.Contains(exts, ExtServerName) {
		sni = 'd'
	}
	a := string(transport) + versionCode(h.MaxVersion()) + string(sni) + count2(len(suites)) + count2(len(exts)) + alpnCode(h.ALPN)

	sorted := slices.Clone(suites)
	slices.Sort(sorted)
	b := hash12(hexList(sorted))

	var hashed []uint16
	for _, e := range exts {
		if e != ExtServerName && e != ExtALPN {
			hashed = append(hashed, e)
		}
	}
	slices.Sort(hashed)
	c := ""
	if len(hashed) > 0 {
		c = hexList(hashed)
		if sigs := withoutGREASE(h.SignatureAlgorithms); len(sigs) > 0 {
			c += "_" + hexList(sigs)
		}
	}
	return a + "_" + b + "_" + hash12(c)
}

// JA3Fields are the five JA3 field lists, GREASE removed, in decimal.
type JA3Fields struct {
	Version        uint16
	CipherSuites   []uint16
	Extensions     []uint16
	Groups         []uint16
	ECPointFormats []byte
}

// JA3 returns the ClientHello's JA3 field lists.
func (h *ClientHello) JA3() JA3Fields {
	return JA3Fields{
		Version:        h.LegacyVersion,
		CipherSuites:   withoutGREASE(h.CipherSuites),
		Extensions:     withoutGREASE(h.ExtensionTypes()),
		Groups:         withoutGREASE(h.SupportedGroups),
		ECPointFormats: h.ECPointFormats,
	}
}

func decList[T uint16 | byte](vs []T) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, "-")
}

// String is the JA3 string: "version,suites,extensions,groups,formats".
func (f JA3Fields) String() string {
	return strconv.Itoa(int(f.Version)) + "," + decList(f.CipherSuites) + "," + decList(f.Extensions) + "," +
		decList(f.Groups) + "," + decList(f.ECPointFormats)
}

// Hash is the JA3 fingerprint, the MD5 of String.
func (f JA3Fields) Hash() string {
	sum := md5.Sum([]byte(f.String()))
	return hex.EncodeToString(sum[:])
}

// Sorted returns f with its extension list sorted: equal for two hellos
// that differ only in extension order (BoringSSL permutes it).
func (f JA3Fields) Sorted() JA3Fields {
	f.Extensions = slices.Clone(f.Extensions)
	slices.Sort(f.Extensions)
	return f
}

// JA4S is the FoxIO JA4S fingerprint of a ServerHello. alpn is the
// protocol the server chose ("" when none; in TLS 1.3 it is encrypted and
// JA4S uses "00").
func (h *ServerHello) JA4S(transport byte, alpn string) string {
	exts := h.ExtensionTypes()
	var protos []string
	if alpn != "" {
		protos = []string{alpn}
	}
	a := string(transport) + versionCode(h.Version()) + count2(len(exts)) + alpnCode(protos)
	return a + "_" + fmt.Sprintf("%04x", h.CipherSuite) + "_" + hash12(hexList(exts))
}

// JA3S is the JA3S string of a ServerHello: "version,suite,extensions".
func (h *ServerHello) JA3S() string {
	return strconv.Itoa(int(h.LegacyVersion)) + "," + strconv.Itoa(int(h.CipherSuite)) + "," + decList(h.ExtensionTypes())
}
