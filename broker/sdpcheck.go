package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Session descriptions are relayed, not used, by the broker, so it checks
// only that one is a plausible WebRTC data-channel description: a client or
// proxy that sends anything else gets a clear error at once instead of a
// failed connection later, and junk is not handed on to the other side.

// maxCandidates bounds the ICE candidates in one description; real peers
// send a handful per network interface.
const maxCandidates = 100

var (
	errSDPTooLarge = errors.New("session description too large")
	errSDPInvalid  = errors.New("invalid session description")
)

// sdpJSON is the JSON form carried in messages (PROTOCOL.md §1.1).
type sdpJSON struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// checkSessionDescription checks the JSON text of a session description of
// type want ("offer" or "answer") that is at most maxBytes long.
func checkSessionDescription(desc string, want string, maxBytes int) error {
	if len(desc) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", errSDPTooLarge, len(desc), maxBytes)
	}
	var d sdpJSON
	if err := json.Unmarshal([]byte(desc), &d); err != nil {
		return fmt.Errorf("%w: %w", errSDPInvalid, err)
	}
	if d.Type != want {
		return fmt.Errorf("%w: type %q, want %q", errSDPInvalid, d.Type, want)
	}
	return checkSDP(d.SDP)
}

// checkSDP checks the SDP text: lines of the form "x=value" starting with
// "v=0", only data-channel media sections (at least one), ICE credentials,
// a DTLS fingerprint, and at most maxCandidates candidates.
func checkSDP(sdp string) error {
	if !strings.HasPrefix(sdp, "v=0\r\n") && !strings.HasPrefix(sdp, "v=0\n") {
		return fmt.Errorf("%w: does not start with v=0", errSDPInvalid)
	}
	var media, candidates int
	var ufrag, pwd, fingerprint bool
	for line := range strings.Lines(sdp) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return fmt.Errorf("%w: malformed line %.40q", errSDPInvalid, line)
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 || c == 0x7f {
				return fmt.Errorf("%w: control character in line %.40q", errSDPInvalid, line)
			}
		}
		switch line[0] {
		case 'm':
			// "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", or the
			// older "m=application 9 DTLS/SCTP 5000".
			if !strings.HasPrefix(line, "m=application ") || !strings.Contains(line, "DTLS/SCTP") {
				return fmt.Errorf("%w: media section %.60q is not a data channel", errSDPInvalid, line)
			}
			media++
		case 'a':
			switch {
			case strings.HasPrefix(line, "a=candidate:"):
				if candidates++; candidates > maxCandidates {
					return fmt.Errorf("%w: more than %d candidates", errSDPInvalid, maxCandidates)
				}
			case strings.HasPrefix(line, "a=ice-ufrag:") && len(line) > len("a=ice-ufrag:"):
				ufrag = true
			case strings.HasPrefix(line, "a=ice-pwd:") && len(line) > len("a=ice-pwd:"):
				pwd = true
			case strings.HasPrefix(line, "a=fingerprint:") && len(line) > len("a=fingerprint:"):
				fingerprint = true
			}
		}
	}
	switch {
	case media == 0:
		return fmt.Errorf("%w: no data-channel media section", errSDPInvalid)
	case !ufrag || !pwd:
		return fmt.Errorf("%w: no ICE credentials", errSDPInvalid)
	case !fingerprint:
		return fmt.Errorf("%w: no DTLS fingerprint", errSDPInvalid)
	}
	return nil
}
