// Package sdpjson converts WebRTC session descriptions to and from the JSON
// text that Snowflake messages carry as strings (PROTOCOL.md §1.1):
// {"type":"offer","sdp":"v=0\r\n..."}. It is common/sdpwire on pion's
// webrtc.SessionDescription, for the programs that run pion.
package sdpjson

import (
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/sdpwire"
)

// ErrUnknownType reports a "type" other than offer, pranswer, answer or
// rollback.
var ErrUnknownType = sdpwire.ErrUnknownType

// ErrMalformed reports JSON that is not an object with string members
// "type" and "sdp".
var ErrMalformed = sdpwire.ErrMalformed

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
	return sdpwire.Encode(sdpwire.Desc{Type: desc.Type.String(), SDP: desc.SDP})
}

// Decode parses the JSON text of a session description. Keys match
// case-insensitively and unknown keys are ignored, as in the reference; both
// keys must be present and be strings.
func Decode(s string) (*webrtc.SessionDescription, error) {
	d, err := sdpwire.Decode(s)
	if err != nil {
		return nil, err
	}
	return &webrtc.SessionDescription{Type: webrtc.NewSDPType(d.Type), SDP: d.SDP}, nil
}
