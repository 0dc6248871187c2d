// Package sdpjson converts WebRTC session descriptions to and from the JSON
// text that Snowflake messages carry as strings (PROTOCOL.md §1.1):
// {"type":"offer","sdp":"v=0\r\n..."}.
package sdpjson

import (
	"errors"

	"github.com/pion/webrtc/v4"
)

// ErrUnknownType reports a "type" other than offer, pranswer, answer or
// rollback.
var ErrUnknownType = errors.New("unknown SDP type")

// Encode returns the JSON text of desc with keys "type" then "sdp".
func Encode(desc *webrtc.SessionDescription) (string, error) { panic("TODO") }

// Decode parses the JSON text of a session description. Keys match
// case-insensitively and unknown keys are ignored, as in the reference; both
// keys must be present and be strings.
func Decode(s string) (*webrtc.SessionDescription, error) { panic("TODO") }
