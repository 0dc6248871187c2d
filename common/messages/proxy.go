package messages

// Proxy types known to the broker; others are counted as "unknown".
var KnownProxyTypes = []string{"standalone", "webext", "badge", "iptproxy", "bloco"}

// Proxy poll statuses.
const (
	StatusMatch                 = "client match"
	StatusNoMatch               = "no match"
	StatusIncorrectRelayPattern = "incorrect relay pattern"
	StatusSuccess               = "success"
	StatusClientGone            = "client gone"
)

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
// AcceptedRelayPattern in that order. Version defaults to ProxyVersion.
func (r *ProxyPollRequest) Encode() ([]byte, error) { panic("TODO") }

// DecodeProxyPollRequest parses and validates a proxy poll: Sid required,
// major version 1, valid NAT type.
func DecodeProxyPollRequest(data []byte) (*ProxyPollRequest, error) { panic("TODO") }

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
func (r *ProxyPollResponse) Encode() ([]byte, error) { panic("TODO") }

// DecodeProxyPollResponse parses a broker reply to a proxy poll. A status
// other than match/no match is returned as an error whose text is the status.
func DecodeProxyPollResponse(data []byte) (*ProxyPollResponse, error) { panic("TODO") }

// ProxyAnswerRequest carries a proxy's answer for the client of Sid.
type ProxyAnswerRequest struct {
	Version string
	Sid     string
	Answer  string
}

// Encode returns {"Version":"1.3","Sid":...,"Answer":...} (Version defaults
// to ProxyVersion).
func (r *ProxyAnswerRequest) Encode() ([]byte, error) { panic("TODO") }

// DecodeProxyAnswerRequest parses and validates an answer (Sid and Answer
// required, major version 1).
func DecodeProxyAnswerRequest(data []byte) (*ProxyAnswerRequest, error) { panic("TODO") }

// ProxyAnswerResponse is the broker's reply to an answer.
type ProxyAnswerResponse struct {
	Status string
}

// Encode returns {"Status":...}.
func (r *ProxyAnswerResponse) Encode() ([]byte, error) { panic("TODO") }

// DecodeProxyAnswerResponse parses the reply; a status other than success is
// an error whose text is the status.
func DecodeProxyAnswerResponse(data []byte) (*ProxyAnswerResponse, error) { panic("TODO") }
