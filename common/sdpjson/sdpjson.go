// Package sdpjson converts WebRTC session descriptions to and from the JSON
// text that Snowflake messages carry as strings (PROTOCOL.md §1.1):
// {"type":"offer","sdp":"v=0\r\n..."}.
package sdpjson

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// ErrUnknownType reports a "type" other than offer, pranswer, answer or
// rollback.
var ErrUnknownType = errors.New("unknown SDP type")

// ErrMalformed reports JSON that is not an object with string members
// "type" and "sdp".
var ErrMalformed = errors.New("malformed session description")

// wire is the JSON shape. encoding/json gives the reference's key order and
// string escaping on encode and its case-insensitive keys on decode.
type wire struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// Encode returns the JSON text of desc with keys "type" then "sdp".
func Encode(desc *webrtc.SessionDescription) (string, error) {
	if desc == nil {
		return "", fmt.Errorf("%w: nil", ErrMalformed)
	}
	switch desc.Type {
	case webrtc.SDPTypeOffer, webrtc.SDPTypePranswer, webrtc.SDPTypeAnswer, webrtc.SDPTypeRollback:
	default:
		return "", ErrUnknownType
	}
	b, err := json.Marshal(wire{Type: desc.Type.String(), SDP: desc.SDP})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Decode parses the JSON text of a session description. Keys match
// case-insensitively and unknown keys are ignored, as in the reference; both
// keys must be present and be strings.
func Decode(s string) (*webrtc.SessionDescription, error) {
	// Raw values let a missing key, null and a non-string be told apart
	// from an empty string.
	var raw struct {
		Type json.RawMessage `json:"type"`
		SDP  json.RawMessage `json:"sdp"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	typ, err := stringValue(raw.Type, "type")
	if err != nil {
		return nil, err
	}
	sdp, err := stringValue(raw.SDP, "sdp")
	if err != nil {
		return nil, err
	}
	var t webrtc.SDPType
	switch typ {
	case "offer":
		t = webrtc.SDPTypeOffer
	case "pranswer":
		t = webrtc.SDPTypePranswer
	case "answer":
		t = webrtc.SDPTypeAnswer
	case "rollback":
		t = webrtc.SDPTypeRollback
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	return &webrtc.SessionDescription{Type: t, SDP: sdp}, nil
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
		return "", err
	}
	return s, nil
}
