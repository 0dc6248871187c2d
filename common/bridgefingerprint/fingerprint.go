// Package bridgefingerprint parses the bridge identity fingerprints that
// clients name in broker polls and that the broker keys its bridge list by.
package bridgefingerprint

import (
	"encoding/hex"
	"errors"
	"strings"
)

// Default is the fingerprint assumed when a client names none: the original
// Snowflake bridge.
const Default = "2B280B23E1107BB62ABFC40DDCC8824814F80A72"

// ErrInvalid reports a fingerprint that is not 20 or 32 bytes of hex.
var ErrInvalid = errors.New("bridge fingerprint invalid")

// Fingerprint is a decoded fingerprint, usable as a map key.
type Fingerprint string

// Parse decodes a hex fingerprint (any case) of 20 bytes (RSA identity) or
// 32 bytes (ed25519 identity).
func Parse(s string) (Fingerprint, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 20 && len(b) != 32) {
		return "", ErrInvalid
	}
	return Fingerprint(b), nil
}

// String returns the fingerprint as uppercase hex.
func (f Fingerprint) String() string {
	return strings.ToUpper(hex.EncodeToString([]byte(f)))
}
