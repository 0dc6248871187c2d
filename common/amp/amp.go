// Package amp implements the AMP cache rendezvous encodings (PROTOCOL.md
// §3.4, §4.2): the request path that carries a client poll, the AMP cache
// URL rewriting, and the HTML "armor" that carries the broker's reply.
//
// An AMP cache fetches a publisher's page and serves it from its own domain,
// so a client that can reach the cache (cdn.ampproject.org) but not the
// broker can still rendezvous: the poll travels in the URL path, and the
// answer comes back as base64 text inside <pre> elements of an AMP page.
package amp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownArmorVersion reports an armored payload not starting with "0".
var ErrUnknownArmorVersion = errors.New("unknown armor version indicator")

// Path errors; their texts are the reference's.
var (
	errNoFormat = errors.New("missing format indicator")
	errNoData   = errors.New("missing data")
)

// cacheBreakerBytes of randomness give the 12 base64url characters that make
// every poll URL distinct, so that no cache answers from a stale copy.
const cacheBreakerBytes = 9

// EncodePath returns the path suffix "0<cacheBreaker>/<base64url(data)>",
// where cacheBreaker is 12 random base64url characters.
func EncodePath(data []byte) string {
	var nonce [cacheBreakerBytes]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24+)
	enc := base64.RawURLEncoding
	var b strings.Builder
	b.Grow(2 + enc.EncodedLen(len(nonce)) + enc.EncodedLen(len(data)))
	b.WriteByte('0')
	b.WriteString(enc.EncodeToString(nonce[:]))
	b.WriteByte('/')
	b.WriteString(enc.EncodeToString(data))
	return b.String()
}

// DecodePath decodes a path produced by EncodePath (the part after
// "/amp/client/"): it must start with "0"; everything after the last "/" is
// unpadded base64url.
func DecodePath(path string) ([]byte, error) {
	if path == "" {
		return nil, errNoFormat
	}
	if path[0] != '0' {
		return nil, fmt.Errorf("unknown format indicator %q", path[0])
	}
	// What lies between the indicator and the last slash is the cache
	// breaker (possibly with slashes of its own); there must be a slash.
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return nil, errNoData
	}
	return base64.RawURLEncoding.DecodeString(path[i+1:])
}
