// Package messages encodes and decodes the broker's messages: client polls
// (version 1.0) and proxy polls and answers (version 1.3), with the
// reference's field names, error strings and leniency (PROTOCOL.md §3).
package messages

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

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
	ErrInvalidNAT         = nattype.ErrInvalid // "invalid NAT type"
	ErrNoSid              = errors.New("no supplied session id")
	ErrNoAnswer           = errors.New("no supplied answer")
	ErrEmptyResponse      = errors.New("empty response from broker")
)

// ClientPollRequest is a client's offer to the broker.
//
// The struct tags are the wire keys; decoding goes through encoding/json so
// that Go's JSON errors read as the reference's do (they name this type).
type ClientPollRequest struct {
	Offer       string `json:"offer"`       // session-description JSON (package sdpjson)
	NAT         string `json:"nat"`         // nattype value; empty encodes as unknown
	Fingerprint string `json:"fingerprint"` // bridge fingerprint hex; empty means the default bridge
}

// Encode returns "1.0\n" followed by the JSON object with keys offer, nat,
// fingerprint (no trailing newline). An empty NAT is sent as unknown and an
// empty Fingerprint as bridgefingerprint.Default, as the reference client
// does; values are otherwise not validated.
func (r *ClientPollRequest) Encode() ([]byte, error) {
	nat := r.NAT
	if nat == "" {
		nat = nattype.Unknown
	}
	fp := r.Fingerprint
	if fp == "" {
		fp = bridgefingerprint.Default
	}
	b := make([]byte, 0, 48+len(ClientVersion)+jsonStringLen(r.Offer)+jsonStringLen(nat)+jsonStringLen(fp))
	b = append(b, ClientVersion...)
	b = append(b, '\n', '{')
	b = appendJSONKey(b, "offer", true)
	b = AppendJSONString(b, r.Offer)
	b = appendJSONKey(b, "nat", false)
	b = AppendJSONString(b, nat)
	b = appendJSONKey(b, "fingerprint", false)
	b = AppendJSONString(b, fp)
	return append(b, '}'), nil
}

// DecodeClientPollRequest parses a client poll. NAT is normalised (empty to
// unknown) and Fingerprint is validated and defaulted to
// bridgefingerprint.Default.
//
// Like the reference broker it requires the first line to be exactly "1.0"
// (ErrUnsupportedVersion otherwise, including when there is no LF), decodes
// the rest as Go's encoding/json does (keys match case-insensitively, unknown
// keys are ignored) and returns JSON errors unwrapped, because brokers relay
// the error text to the client. Then it checks, in order: ErrNoOffer,
// ErrBadFingerprint, ErrInvalidNAT.
func DecodeClientPollRequest(data []byte) (*ClientPollRequest, error) {
	version, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || string(version) != ClientVersion {
		return nil, ErrUnsupportedVersion
	}
	var r ClientPollRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Offer == "" {
		return nil, ErrNoOffer
	}
	if r.Fingerprint == "" {
		r.Fingerprint = bridgefingerprint.Default
	}
	if _, err := bridgefingerprint.Parse(r.Fingerprint); err != nil {
		return nil, ErrBadFingerprint
	}
	nat, err := nattype.Parse(r.NAT)
	if err != nil {
		return nil, ErrInvalidNAT
	}
	r.NAT = nat
	return &r, nil
}

// ClientPollResponse is the broker's reply to a client poll; exactly one of
// Answer and Error is set.
type ClientPollResponse struct {
	Answer string `json:"answer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Encode returns the JSON text of r: {"answer":...} or {"error":...}, empty
// fields omitted.
func (r *ClientPollResponse) Encode() ([]byte, error) {
	b := make([]byte, 0, 24+jsonStringLen(r.Answer)+jsonStringLen(r.Error))
	b = append(b, '{')
	first := true
	if r.Answer != "" {
		b = appendJSONKey(b, "answer", first)
		b = AppendJSONString(b, r.Answer)
		first = false
	}
	if r.Error != "" {
		b = appendJSONKey(b, "error", first)
		b = AppendJSONString(b, r.Error)
	}
	return append(b, '}'), nil
}

// DecodeClientPollResponse parses a broker reply; a reply with neither field
// set is ErrEmptyResponse.
func DecodeClientPollResponse(data []byte) (*ClientPollResponse, error) {
	var r ClientPollResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Answer == "" && r.Error == "" {
		return nil, ErrEmptyResponse
	}
	return &r, nil
}
