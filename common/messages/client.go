// Package messages encodes and decodes the broker's messages: client polls
// (version 1.0) and proxy polls and answers (version 1.3), with the
// reference's field names, error strings and leniency (PROTOCOL.md §3).
package messages

import "errors"

// Versions sent by this implementation.
const (
	ClientVersion = "1.0"
	ProxyVersion  = "1.3"
)

// Error texts that travel in ClientPollResponse.Error.
const (
	StrNoProxies     = "no snowflake proxies currently available"
	StrTimedOut      = "timed out waiting for answer!"
	StrBridgeUnknown = "bridge with requested fingerprint is unknown to the broker"
)

// Decode errors. Their texts are the reference's, since brokers send them to
// clients verbatim.
var (
	ErrUnsupportedVersion = errors.New("unsupported message version")
	ErrNoOffer            = errors.New("no supplied offer")
	ErrBadFingerprint     = errors.New("cannot decode fingerprint")
	ErrInvalidNAT         = errors.New("invalid NAT type")
	ErrNoSid              = errors.New("no supplied session id")
	ErrNoAnswer           = errors.New("no supplied answer")
	ErrEmptyResponse      = errors.New("empty response from broker")
)

// ClientPollRequest is a client's offer to the broker.
type ClientPollRequest struct {
	Offer       string // session-description JSON (package sdpjson)
	NAT         string // nattype value; empty encodes as unknown
	Fingerprint string // bridge fingerprint hex; empty means the default bridge
}

// Encode returns "1.0\n" followed by the JSON object with keys offer, nat,
// fingerprint (no trailing newline).
func (r *ClientPollRequest) Encode() ([]byte, error) { panic("TODO") }

// DecodeClientPollRequest parses a client poll. NAT is normalised (empty to
// unknown) and Fingerprint is validated and defaulted to
// bridgefingerprint.Default.
func DecodeClientPollRequest(data []byte) (*ClientPollRequest, error) { panic("TODO") }

// ClientPollResponse is the broker's reply to a client poll; exactly one of
// Answer and Error is set.
type ClientPollResponse struct {
	Answer string `json:"answer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Encode returns the JSON text of r.
func (r *ClientPollResponse) Encode() ([]byte, error) { panic("TODO") }

// DecodeClientPollResponse parses a broker reply; a reply with neither field
// set is ErrEmptyResponse.
func DecodeClientPollResponse(data []byte) (*ClientPollResponse, error) { panic("TODO") }
