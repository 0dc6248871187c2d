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

// checkSDP checks an offer or answer against the broker's bound.
func (b *Broker) checkSDP(desc, want string) error {
	if b.noSDPChecks {
		return nil
	}
	return checkSessionDescription(desc, want, b.cfg.MaxSDPBytes)
}

// checkSessionDescription checks the JSON text of a session description of
// type want ("offer" or "answer") that is at most maxBytes long.
func checkSessionDescription(desc string, want string, maxBytes int) error {
	if len(desc) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", errSDPTooLarge, len(desc), maxBytes)
	}
	if body, ok, err := plainSDPJSON(desc, want); ok {
		if err != nil {
			return err
		}
		return checkSDP(body, true)
	}
	var d sdpJSON
	if err := json.Unmarshal([]byte(desc), &d); err != nil {
		return fmt.Errorf("%w: %w", errSDPInvalid, err)
	}
	if d.Type != want {
		return fmt.Errorf("%w: type %q, want %q", errSDPInvalid, d.Type, want)
	}
	return checkSDP(d.SDP, false)
}

// jsonSpecial marks the bytes plainSDPJSON must look at: a quote, a
// backslash, and control characters.
var jsonSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'], t[0x7f] = true, true, true
	return t
}()

// special8 reports whether any of the eight bytes of s is one jsonSpecial
// marks, testing all of them at once in a word (the classic "has a byte
// less than n" and "has a zero byte" tricks; exact as yes/no answers).
func special8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	q, b, d := x^(ones*'"'), x^(ones*'\\'), x^(ones*0x7f)
	return ((x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b|(d-ones)&^d)&highs != 0
}

// plainSDPJSON recognises the two shapes peers send, {"type":T,"sdp":S}
// (browsers, pion) and {"sdp":S,"type":T} (Tor's Go map encoding), with T
// equal to want and S a JSON string whose only escapes are \r and \n. It
// returns S still escaped, so that the check needs neither a JSON decode
// nor a copy, and it does checkSDP's character check on the way (err);
// anything else (ok false) is left to encoding/json.
// FuzzSessionDescription checks that both ways agree.
func plainSDPJSON(desc, want string) (sdp string, ok bool, err error) {
	var body string
	// The prefixes and the suffix must not overlap: {"type":"} is neither.
	switch {
	case len(desc) < len(`{"sdp":"","type":""}`):
		return "", false, nil
	case strings.HasPrefix(desc, `{"type":"`) && strings.HasSuffix(desc, `"}`):
		rest := desc[len(`{"type":"`) : len(desc)-2]
		t, text, found := strings.Cut(rest, `","sdp":"`)
		if !found || t != want {
			return "", false, nil
		}
		body = text
	case strings.HasPrefix(desc, `{"sdp":"`) && strings.HasSuffix(desc, `"}`):
		rest := desc[len(`{"sdp":"`) : len(desc)-2]
		i := strings.LastIndex(rest, `","type":"`)
		if i < 0 || rest[i+len(`","type":"`):] != want {
			return "", false, nil
		}
		body = rest[:i]
	default:
		return "", false, nil
	}
	for i := 0; i < len(body); i++ {
		// Skip eight plain bytes at a time; most of an SDP is plain.
		for i+8 <= len(body) && !special8(body[i:i+8]) {
			i += 8
		}
		if i >= len(body) {
			break
		}
		c := body[i]
		if !jsonSpecial[c] {
			continue
		}
		switch {
		case c == '"':
			return "", false, nil
		case c == '\\':
			if i+1 == len(body) || (body[i+1] != 'r' && body[i+1] != 'n') {
				return "", false, nil
			}
			// A CR anywhere but before a LF (or at the very end) stays in
			// its line.
			if body[i+1] == 'r' && i+2 < len(body) && !strings.HasPrefix(body[i+2:], `\n`) {
				return "", true, fmt.Errorf("%w: control character in a line", errSDPInvalid)
			}
			i++
		default:
			return "", true, fmt.Errorf("%w: control character in a line", errSDPInvalid)
		}
	}
	return body, true, nil
}

// checkSDP checks the SDP text: lines of the form "x=value" starting with
// "v=0", only data-channel media sections (at least one), ICE credentials,
// a DTLS fingerprint, and at most maxCandidates candidates. With escaped,
// sdp is still JSON-escaped as plainSDPJSON returns it: line ends are the
// two-character escapes.
func checkSDP(sdp string, escaped bool) error {
	lf, cr := "\n", "\r"
	if escaped {
		lf, cr = `\n`, `\r`
	}
	if !strings.HasPrefix(sdp, "v=0"+cr+lf) && !strings.HasPrefix(sdp, "v=0"+lf) {
		return fmt.Errorf("%w: does not start with v=0", errSDPInvalid)
	}
	var media, candidates int
	var ufrag, pwd, fingerprint bool
	for len(sdp) > 0 {
		line, rest, _ := strings.Cut(sdp, lf)
		sdp = rest
		line = strings.TrimSuffix(line, cr)
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return fmt.Errorf("%w: malformed line %.40q", errSDPInvalid, line)
		}
		// plainSDPJSON checked the characters of escaped text already.
		for i := 0; !escaped && i < len(line); i++ {
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
