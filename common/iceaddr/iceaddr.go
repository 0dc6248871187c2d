// Package iceaddr classifies addresses the way Snowflake peers do and
// filters ICE candidates in SDP: Redact prepares an offer or answer to leave
// the machine (local host candidates stripped, related addresses hidden as
// browsers hide them), and ClientAddr finds a client's public address in its
// offer (PROTOCOL.md §1.2, §5.2, §7.2).
//
// The functions work on the SDP text line by line instead of parsing and
// re-serialising it, so whatever they keep stays byte for byte as the peer
// wrote it, and malformed input is passed through rather than rejected.
package iceaddr

import (
	"net/netip"
	"strings"
)

// localPrefixes are the ranges IsLocal reports. Unlike Snowflake 2.5.1 (which
// omits it) this includes IPv6 link-local fe80::/10, as later releases do.
var localPrefixes = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
	netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
	netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),  // RFC 6598 carrier-grade NAT
	netip.MustParsePrefix("169.254.0.0/16"), // RFC 3927 link-local
	netip.MustParsePrefix("fc00::/7"),       // RFC 4193 unique local
	netip.MustParsePrefix("fe80::/10"),      // RFC 4291 link-local
}

// normal drops the zone and unmaps IPv4-mapped IPv6, so that prefix tests
// see the address itself.
func normal(addr netip.Addr) netip.Addr {
	return addr.WithZone("").Unmap()
}

// IsLocal reports whether addr is in a private, CGNAT, link-local or
// unique-local range (loopback and unspecified are tested separately by
// callers with IsLoopback/IsUnspecified). IPv4-mapped IPv6 addresses are
// judged by their IPv4 address; zones are ignored.
func IsLocal(addr netip.Addr) bool {
	addr = normal(addr)
	for _, p := range localPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// IsPublic reports whether addr is none of local, loopback, unspecified or
// multicast. The zero Addr is not public.
func IsPublic(addr netip.Addr) bool {
	addr = normal(addr)
	return addr.IsValid() && !IsLocal(addr) && !addr.IsLoopback() &&
		!addr.IsUnspecified() && !addr.IsMulticast()
}

// isStrippable reports whether a host candidate with this address must not
// leave the machine.
func isStrippable(addr netip.Addr) bool {
	addr = normal(addr)
	return IsLocal(addr) || addr.IsLoopback() || addr.IsUnspecified()
}

// lines calls yield with each line of sdp including its terminator, and with
// the line's content without "\n" or "\r\n".
func lines(sdp string, yield func(line, content string) bool) {
	for len(sdp) > 0 {
		var line string
		if i := strings.IndexByte(sdp, '\n'); i >= 0 {
			line, sdp = sdp[:i+1], sdp[i+1:]
		} else {
			line, sdp = sdp, ""
		}
		content := strings.TrimSuffix(line, "\n")
		content = strings.TrimSuffix(content, "\r")
		if !yield(line, content) {
			return
		}
	}
}

// candidate is the part of an a=candidate line that matters here (RFC 8839
// §5.1: foundation component transport priority address port "typ" type).
type candidate struct {
	address string
	typ     string
}

// parseCandidate parses an "a=candidate:" line; ok is false for other lines
// and for candidate lines too short to carry an address and type.
func parseCandidate(content string) (c candidate, ok bool) {
	rest, found := strings.CutPrefix(content, "a=candidate:")
	if !found {
		return c, false
	}
	f := strings.Fields(rest)
	if len(f) < 8 || !strings.EqualFold(f[6], "typ") {
		return c, false
	}
	return candidate{address: f[4], typ: f[7]}, true
}

// StripLocalCandidates returns sdp without the host candidates whose address
// is local, loopback or unspecified. Server-reflexive and relay candidates
// and non-IP (mDNS) candidates are kept. Other lines are kept byte for byte.
//
// Malformed candidate lines are judged conservatively (see isLocalHost), so
// that no parser a peer might use finds a local host candidate in the result.
func StripLocalCandidates(sdp string) string {
	var b strings.Builder
	kept := 0 // bytes of sdp before pos decided to keep but not yet copied
	pos := 0  // start of the current line
	lines(sdp, func(line, content string) bool {
		if isLocalHost(content) {
			if b.Cap() == 0 {
				b.Grow(len(sdp))
			}
			b.WriteString(sdp[pos-kept : pos])
			kept = 0
		} else {
			kept += len(line)
		}
		pos += len(line)
		return true
	})
	if b.Cap() == 0 {
		return sdp // nothing stripped
	}
	b.WriteString(sdp[pos-kept : pos])
	return b.String()
}

// isLocalHost reports whether an SDP line is a host candidate with a local,
// loopback or unspecified address. For a well-formed line the address is the
// fifth field, but parsers disagree about runs of spaces and other
// whitespace (pion reads empty fields between double spaces), so any field
// before "typ host" that is such an address counts. Only the address field
// of a well-formed candidate can hold an IP address.
func isLocalHost(content string) bool {
	rest, found := strings.CutPrefix(content, "a=candidate:")
	if !found {
		return false
	}
	f := strings.Fields(rest)
	typ := -1
	for i := 0; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "typ") && strings.EqualFold(f[i+1], "host") {
			typ = i
			break
		}
	}
	for _, field := range f[:max(typ, 0)] {
		if addr, ok := parseAddr(field); ok && isStrippable(addr) {
			return true
		}
	}
	return false
}

// parseAddr parses a candidate's address field as pion does: everything from
// the first "%" on is a zone and is dropped, even when empty ("10.0.0.1%")
// or on an IPv4 address, both of which netip.ParseAddr refuses.
func parseAddr(field string) (netip.Addr, bool) {
	field, _, _ = strings.Cut(field, "%")
	a, err := netip.ParseAddr(field)
	return a, err == nil
}

// Redact returns sdp ready to leave the machine in an offer or answer: the
// related addresses of every candidate hidden (see HideRelatedAddresses)
// and, unless keepLocal, the local host candidates stripped (see
// StripLocalCandidates). Client and proxy both call it on what they send.
//
// Hiding comes first: on a malformed line the 0.0.0.0 it writes may be
// what makes the line a local host candidate, and stripping must see it.
func Redact(sdp string, keepLocal bool) string {
	sdp = HideRelatedAddresses(sdp)
	if !keepLocal {
		sdp = StripLocalCandidates(sdp)
	}
	return sdp
}

// hiddenAddr and hiddenPort replace related addresses, as browsers send
// them for server-reflexive and relay candidates.
const (
	hiddenAddr = "0.0.0.0"
	hiddenPort = "0"
)

// HideRelatedAddresses returns sdp with the "raddr" and "rport" values of
// every candidate line set to 0.0.0.0 and 0, as browsers do: the related
// address of a server-reflexive or relay candidate is the machine's LAN
// address and port, which nothing on the other side needs (RFC 8839 §5.1
// makes them informational). Everything else stays byte for byte.
//
// Every field after "typ" that is "raddr" or "rport" (in any case) has its
// following field replaced, so no parser reading whitespace differently
// finds a related address left.
func HideRelatedAddresses(sdp string) string {
	var b strings.Builder
	copied := 0 // bytes of sdp already in b
	pos := 0    // start of the current line
	lines(sdp, func(line, content string) bool {
		if strings.HasPrefix(content, "a=candidate:") {
			relatedValues(content, func(start, end int, hidden string) {
				if sdp[pos+start:pos+end] == hidden {
					return
				}
				if b.Cap() == 0 {
					b.Grow(len(sdp))
				}
				b.WriteString(sdp[copied : pos+start])
				b.WriteString(hidden)
				copied = pos + end
			})
		}
		pos += len(line)
		return true
	})
	if b.Cap() == 0 {
		return sdp // nothing hidden
	}
	b.WriteString(sdp[copied:])
	return b.String()
}

// relatedValues calls yield with the byte range of each value that follows
// a "raddr" or "rport" field after the "typ" field of a candidate line, and
// what to replace it with.
func relatedValues(content string, yield func(start, end int, hidden string)) {
	afterTyp := false
	replace := ""
	for i := 0; i < len(content); {
		if isSpace(content[i]) {
			i++
			continue
		}
		j := i
		for j < len(content) && !isSpace(content[j]) {
			j++
		}
		field := content[i:j]
		switch {
		case replace != "":
			yield(i, j, replace)
			replace = ""
		case !afterTyp:
			afterTyp = strings.EqualFold(field, "typ")
		case strings.EqualFold(field, "raddr"):
			replace = hiddenAddr
		case strings.EqualFold(field, "rport"):
			replace = hiddenPort
		}
		i = j
	}
}

// isSpace matches the separators of strings.Fields that SDP text can hold.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n'
}

// ClientAddr returns the first public candidate address in sdp, falling back
// to a public "c=" connection address; ok is false when there is none.
// Candidates of every type count, in order of appearance.
func ClientAddr(sdp string) (addr netip.Addr, ok bool) {
	var conn netip.Addr
	lines(sdp, func(_, content string) bool {
		if c, isCand := parseCandidate(content); isCand {
			if a, parsed := parseAddr(c.address); parsed && IsPublic(a) {
				addr, ok = normal(a), true
				return false
			}
			return true
		}
		if !conn.IsValid() {
			if a, isConn := parseConnection(content); isConn && IsPublic(a) {
				conn = normal(a)
			}
		}
		return true
	})
	if ok {
		return addr, true
	}
	return conn, conn.IsValid()
}

// parseConnection parses "c=IN IP4 203.0.113.7" (an optional "/ttl" suffix
// is ignored).
func parseConnection(content string) (netip.Addr, bool) {
	rest, found := strings.CutPrefix(content, "c=")
	if !found {
		return netip.Addr{}, false
	}
	f := strings.Fields(rest)
	if len(f) < 3 || f[0] != "IN" {
		return netip.Addr{}, false
	}
	host, _, _ := strings.Cut(f[2], "/")
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// HasCandidate reports whether sdp contains at least one a=candidate line.
func HasCandidate(sdp string) bool {
	found := false
	lines(sdp, func(_, content string) bool {
		found = strings.HasPrefix(content, "a=candidate:")
		return !found
	})
	return found
}
