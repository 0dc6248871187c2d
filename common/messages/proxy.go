package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

// Proxy types known to the broker; others are counted as "unknown".
var KnownProxyTypes = []string{"standalone", "webext", "badge", "iptproxy", "bloco"}

// ProxyTypeUnknown is what DecodeProxyPollRequest makes of a Type that is
// not in KnownProxyTypes.
const ProxyTypeUnknown = "unknown"

// Proxy poll statuses.
const (
	StatusMatch                 = "client match"
	StatusNoMatch               = "no match"
	StatusIncorrectRelayPattern = "incorrect relay pattern"
	StatusSuccess               = "success"
	StatusClientGone            = "client gone"
)

// ErrNoStatus reports a broker reply to a proxy without a Status (the
// reference's text).
var ErrNoStatus = errors.New("received invalid data")

// StatusError is a broker status that the receiver treats as a failure, such
// as StatusIncorrectRelayPattern or StatusClientGone. Its text is the status.
type StatusError string

func (e StatusError) Error() string { return string(e) }

// ProxyPollRequest is a proxy's long poll for a client.
type ProxyPollRequest struct {
	Sid     string
	Version string
	Type    string // normalised: unknown types become "unknown"
	NAT     string // normalised: empty becomes unknown
	Clients int
	// AcceptedRelayPattern is nil when the proxy omitted the field (a
	// legacy proxy that predates relay URLs).
	AcceptedRelayPattern *string
}

// Encode returns the JSON text with keys Sid, Version, Type, NAT, Clients,
// AcceptedRelayPattern in that order. Version defaults to ProxyVersion and
// an empty NAT is sent as unknown; a nil AcceptedRelayPattern is sent as
// null, which decodes back to nil.
func (r *ProxyPollRequest) Encode() ([]byte, error) {
	return r.AppendJSON(nil), nil
}

// AppendJSON appends the text Encode returns to dst.
func (r *ProxyPollRequest) AppendJSON(dst []byte) []byte {
	version := r.Version
	if version == "" {
		version = ProxyVersion
	}
	nat := r.NAT
	if nat == "" {
		nat = nattype.Unknown
	}
	if dst == nil {
		n := 96 + jsonStringLen(r.Sid) + jsonStringLen(version) + jsonStringLen(r.Type) + jsonStringLen(nat)
		if r.AcceptedRelayPattern != nil {
			n += jsonStringLen(*r.AcceptedRelayPattern)
		}
		dst = make([]byte, 0, n)
	}
	dst = append(dst, '{')
	dst = appendJSONKey(dst, "Sid", true)
	dst = AppendJSONString(dst, r.Sid)
	dst = appendJSONKey(dst, "Version", false)
	dst = AppendJSONString(dst, version)
	dst = appendJSONKey(dst, "Type", false)
	dst = AppendJSONString(dst, r.Type)
	dst = appendJSONKey(dst, "NAT", false)
	dst = AppendJSONString(dst, nat)
	dst = appendJSONKey(dst, "Clients", false)
	dst = strconv.AppendInt(dst, int64(r.Clients), 10)
	dst = appendJSONKey(dst, "AcceptedRelayPattern", false)
	if r.AcceptedRelayPattern == nil {
		dst = append(dst, "null"...)
	} else {
		dst = AppendJSONString(dst, *r.AcceptedRelayPattern)
	}
	return append(dst, '}')
}

// DecodeProxyPollRequest parses and validates a proxy poll: major version 1
// (ErrUnsupportedVersion), Sid required (ErrNoSid), valid NAT type
// (ErrInvalidNAT). Keys match case-insensitively and unknown keys are
// ignored, as with encoding/json; JSON errors are returned unwrapped. Type
// is normalised to ProxyTypeUnknown unless it is in KnownProxyTypes, an
// empty NAT to unknown, and a negative Clients to 0.
func DecodeProxyPollRequest(data []byte) (*ProxyPollRequest, error) {
	r := new(ProxyPollRequest)
	if !decodeProxyPollRequestFast(data, r) {
		*r = ProxyPollRequest{}
		if err := json.Unmarshal(data, r); err != nil {
			return nil, err
		}
	}
	if err := checkVersion(r.Version); err != nil {
		return nil, err
	}
	if r.Sid == "" {
		return nil, ErrNoSid
	}
	nat, err := nattype.Parse(r.NAT)
	if err != nil {
		return nil, ErrInvalidNAT
	}
	r.NAT = nat
	if !slices.Contains(KnownProxyTypes, r.Type) {
		r.Type = ProxyTypeUnknown
	}
	r.Clients = max(r.Clients, 0)
	return r, nil
}

// checkVersion accepts any version whose part before the first "." is "1".
func checkVersion(v string) error {
	if major, _, _ := strings.Cut(v, "."); major != "1" {
		return fmt.Errorf("%w %q", ErrUnsupportedVersion, v)
	}
	return nil
}

// decodeProxyPollRequestFast decodes the common shape of a proxy poll, exact
// key spellings with plain values, without reflection. It reports false for
// anything else, leaving r in an unspecified state; encoding/json then
// decides.
func decodeProxyPollRequestFast(data []byte, r *ProxyPollRequest) bool {
	s := flatScanner{data: data}
	if !s.begin() {
		return false
	}
	for {
		key, val, kind, more, ok := s.next()
		if !ok {
			return false
		}
		if !more {
			return true
		}
		if kind == flatNull {
			// encoding/json leaves a field alone on null, except that
			// a pointer becomes nil.
			switch string(key) {
			case "Sid", "Version", "Type", "NAT", "Clients":
			case "AcceptedRelayPattern":
				r.AcceptedRelayPattern = nil
			default:
				return false
			}
			continue
		}
		if string(key) == "Clients" {
			if kind != flatInt {
				return false
			}
			n, ok := atoi(val)
			if !ok {
				return false
			}
			r.Clients = n
			continue
		}
		if kind != flatString {
			return false
		}
		switch string(key) {
		case "Sid":
			r.Sid = string(val)
		case "Version":
			r.Version = intern(val)
		case "Type":
			r.Type = intern(val)
		case "NAT":
			r.NAT = intern(val)
		case "AcceptedRelayPattern":
			p := intern(val)
			r.AcceptedRelayPattern = &p
		default:
			return false
		}
	}
}

// intern returns the values every proxy sends without allocating.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "1.0":
		return "1.0"
	case "1.2":
		return "1.2"
	case ProxyVersion:
		return ProxyVersion
	case "standalone":
		return "standalone"
	case "webext":
		return "webext"
	case "badge":
		return "badge"
	case "iptproxy":
		return "iptproxy"
	case "bloco":
		return "bloco"
	case nattype.Unknown:
		return nattype.Unknown
	case nattype.Restricted:
		return nattype.Restricted
	case nattype.Unrestricted:
		return nattype.Unrestricted
	case "snowflake.torproject.net$":
		return "snowflake.torproject.net$"
	case "^snowflake.torproject.net$":
		return "^snowflake.torproject.net$"
	}
	return string(b)
}

// ProxyPollResponse is the broker's reply to a proxy poll.
type ProxyPollResponse struct {
	Status   string
	Offer    string // client's session-description JSON when matched
	NAT      string // the client's NAT type when matched
	NextPoll int    // milliseconds until the next poll; 0 = not sent (omitted)
	RelayURL string
}

// Encode returns the JSON text: Status, Offer, NAT, then NextPoll (only when
// non-zero), then RelayURL; all other fields always present.
func (r *ProxyPollResponse) Encode() ([]byte, error) {
	return r.AppendJSON(nil), nil
}

// AppendJSON appends the text Encode returns to dst.
func (r *ProxyPollResponse) AppendJSON(dst []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, 80+jsonStringLen(r.Status)+jsonStringLen(r.Offer)+jsonStringLen(r.NAT)+jsonStringLen(r.RelayURL))
	}
	dst = append(dst, '{')
	dst = appendJSONKey(dst, "Status", true)
	dst = AppendJSONString(dst, r.Status)
	dst = appendJSONKey(dst, "Offer", false)
	dst = AppendJSONString(dst, r.Offer)
	dst = appendJSONKey(dst, "NAT", false)
	dst = AppendJSONString(dst, r.NAT)
	if r.NextPoll != 0 {
		dst = appendJSONKey(dst, "NextPoll", false)
		dst = strconv.AppendInt(dst, int64(r.NextPoll), 10)
	}
	dst = appendJSONKey(dst, "RelayURL", false)
	dst = AppendJSONString(dst, r.RelayURL)
	return append(dst, '}')
}

// DecodeProxyPollResponse parses a broker reply to a proxy poll. A status
// other than match/no match is returned as an error whose text is the status.
//
// With such a StatusError the decoded reply is returned as well, so that the
// proxy can still honour its NextPoll. A missing Status is ErrNoStatus, a
// match without an offer ErrNoOffer. Offer is cleared unless matched and an
// empty NAT becomes unknown.
func DecodeProxyPollResponse(data []byte) (*ProxyPollResponse, error) {
	r := new(ProxyPollResponse)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, err
	}
	if r.NAT == "" {
		r.NAT = nattype.Unknown
	}
	switch r.Status {
	case "":
		return nil, ErrNoStatus
	case StatusMatch:
		if r.Offer == "" {
			return nil, ErrNoOffer
		}
		return r, nil
	case StatusNoMatch:
		r.Offer = ""
		return r, nil
	default:
		r.Offer = ""
		return r, StatusError(r.Status)
	}
}

// ProxyAnswerRequest carries a proxy's answer for the client of Sid.
type ProxyAnswerRequest struct {
	Version string
	Sid     string
	Answer  string
}

// Encode returns {"Version":"1.3","Sid":...,"Answer":...} (Version defaults
// to ProxyVersion).
func (r *ProxyAnswerRequest) Encode() ([]byte, error) {
	version := r.Version
	if version == "" {
		version = ProxyVersion
	}
	b := make([]byte, 0, 32+jsonStringLen(version)+jsonStringLen(r.Sid)+jsonStringLen(r.Answer))
	b = append(b, '{')
	b = appendJSONKey(b, "Version", true)
	b = AppendJSONString(b, version)
	b = appendJSONKey(b, "Sid", false)
	b = AppendJSONString(b, r.Sid)
	b = appendJSONKey(b, "Answer", false)
	b = AppendJSONString(b, r.Answer)
	return append(b, '}'), nil
}

// DecodeProxyAnswerRequest parses and validates an answer (Sid and Answer
// required, major version 1). The checks run in the order
// ErrUnsupportedVersion, ErrNoSid, ErrNoAnswer.
func DecodeProxyAnswerRequest(data []byte) (*ProxyAnswerRequest, error) {
	r := new(ProxyAnswerRequest)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, err
	}
	if err := checkVersion(r.Version); err != nil {
		return nil, err
	}
	if r.Sid == "" {
		return nil, ErrNoSid
	}
	if r.Answer == "" {
		return nil, ErrNoAnswer
	}
	return r, nil
}

// ProxyAnswerResponse is the broker's reply to an answer.
type ProxyAnswerResponse struct {
	Status string
}

// Encode returns {"Status":...}.
func (r *ProxyAnswerResponse) Encode() ([]byte, error) {
	b := make([]byte, 0, 16+jsonStringLen(r.Status))
	b = append(b, '{')
	b = appendJSONKey(b, "Status", true)
	b = AppendJSONString(b, r.Status)
	return append(b, '}'), nil
}

// DecodeProxyAnswerResponse parses the reply; a status other than success is
// an error whose text is the status (a StatusError, returned together with
// the reply), and a missing status is ErrNoStatus.
func DecodeProxyAnswerResponse(data []byte) (*ProxyAnswerResponse, error) {
	r := new(ProxyAnswerResponse)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, err
	}
	switch r.Status {
	case "":
		return nil, ErrNoStatus
	case StatusSuccess:
		return r, nil
	default:
		return r, StatusError(r.Status)
	}
}
