// Package sdpwire converts WebRTC session descriptions to and from the JSON
// text that Snowflake messages carry as strings (PROTOCOL.md §1.1),
// {"type":"offer","sdp":"v=0\r\n..."}, with plain strings for the type and
// the SDP. It exists so that programs without a WebRTC stack of their own
// (the proxy core, the browser proxy) need not link pion/webrtc for its
// SessionDescription type; common/sdpjson is the same codec on pion's type.
package sdpwire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Session description types.
const (
	TypeOffer    = "offer"
	TypePranswer = "pranswer"
	TypeAnswer   = "answer"
	TypeRollback = "rollback"
)

// ErrUnknownType reports a "type" other than offer, pranswer, answer or
// rollback.
var ErrUnknownType = errors.New("unknown SDP type")

// ErrMalformed reports JSON that is not an object with string members
// "type" and "sdp".
var ErrMalformed = errors.New("malformed session description")

// Desc is a session description: its type and its SDP text.
type Desc struct {
	Type string
	SDP  string
}

// wire is the JSON shape. encoding/json gives the reference's key order and
// string escaping on encode and its case-insensitive keys on decode.
type wire struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

func knownType(t string) bool {
	switch t {
	case TypeOffer, TypePranswer, TypeAnswer, TypeRollback:
		return true
	}
	return false
}

// Encode returns the JSON text of d with keys "type" then "sdp".
func Encode(d Desc) (string, error) {
	if !knownType(d.Type) {
		return "", fmt.Errorf("%w %q", ErrUnknownType, d.Type)
	}
	b, err := json.Marshal(wire{Type: d.Type, SDP: d.SDP})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Decode parses the JSON text of a session description. Keys match
// case-insensitively and unknown keys are ignored, as in the reference; both
// keys must be present and be strings, and the type must be known.
func Decode(s string) (Desc, error) {
	// Raw values let a missing key, null and a non-string be told apart
	// from an empty string.
	var raw struct {
		Type json.RawMessage `json:"type"`
		SDP  json.RawMessage `json:"sdp"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return Desc{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	typ, err := stringValue(raw.Type, "type")
	if err != nil {
		return Desc{}, err
	}
	sdp, err := stringValue(raw.SDP, "sdp")
	if err != nil {
		return Desc{}, err
	}
	if !knownType(typ) {
		return Desc{}, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	return Desc{Type: typ, SDP: sdp}, nil
}

func stringValue(v json.RawMessage, key string) (string, error) {
	if len(v) == 0 {
		return "", fmt.Errorf("%w: no %s", ErrMalformed, key)
	}
	if v[0] != '"' {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, key)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return s, nil
}
