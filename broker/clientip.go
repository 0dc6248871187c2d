package broker

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Forwarded headers the broker can take the client address from.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
)

// ForwardedConfig says how far the broker trusts the fronts that add
// forwarding headers. Each front appends the address it received the request
// from to the right of the header, so only the entries added by trusted
// fronts are believed; anything further left may have been written by the
// client itself. The address used is the rightmost entry that no trusted
// front added.
type ForwardedConfig struct {
	// Header is HeaderXForwardedFor (the default) or HeaderForwarded. Only
	// this header is read: a client could add the other one itself.
	Header string
	// Hops is the number of trusted fronts in a row before the broker, each
	// of which appends one entry (default 1). It is used when Proxies is
	// empty.
	Hops int
	// Proxies, if not empty, are the networks of the trusted fronts: the
	// header is believed only when the TCP peer is in one of them, and
	// entries from these networks are skipped from the right.
	Proxies []netip.Prefix
}

// remoteAddr returns the address a request came from: the TCP peer, or,
// with Config.TrustForwarded, the address the trusted fronts saw.
func (b *Broker) remoteAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !b.cfg.TrustForwarded {
		return peer
	}
	return b.cfg.Forwarded.clientAddr(peer, r.Header)
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

func (c *ForwardedConfig) trusted(a netip.Addr) bool {
	for _, p := range c.Proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr applies the configuration to the hop list that the header and
// the TCP peer form. When the hops are not as configured (too few entries,
// or an entry that is not an address) it falls back to the last address it
// could trust, ultimately the peer: a wrong header can only make a client
// look like its front, never like an address of the client's choosing.
func (c *ForwardedConfig) clientAddr(peer netip.Addr, h http.Header) netip.Addr {
	hdr := c.Header
	if hdr == "" {
		hdr = HeaderXForwardedFor
	}
	if len(c.Proxies) > 0 {
		if !c.trusted(peer) {
			return peer
		}
		addr := peer
		for e := range forwardedEntries(h, hdr) {
			a, ok := e.addr()
			if !ok {
				return addr
			}
			if !c.trusted(a) {
				return a
			}
			addr = a
		}
		return addr
	}
	hops := max(c.Hops, 1)
	addr := peer
	for e := range forwardedEntries(h, hdr) {
		a, ok := e.addr()
		if !ok {
			return addr
		}
		addr = a
		if hops--; hops == 0 {
			return addr
		}
	}
	// Fewer entries than trusted fronts: the request did not come through
	// all of them, so none of the header is trustworthy.
	return peer
}

// entry is one hop's node text from a forwarding header.
type entry string

func (e entry) addr() (netip.Addr, bool) { return parseNode(string(e)) }

// forwardedEntries yields the node of each hop of header hdr from right to
// left, across all lines of the header (later lines were appended later).
func forwardedEntries(h http.Header, hdr string) func(yield func(entry) bool) {
	return func(yield func(entry) bool) {
		lines := h.Values(hdr)
		for i := len(lines) - 1; i >= 0; i-- {
			line := lines[i]
			for line != "" {
				var elem string
				if j := strings.LastIndexByte(line, ','); j >= 0 {
					elem, line = line[j+1:], line[:j]
				} else {
					elem, line = line, ""
				}
				elem = strings.TrimSpace(elem)
				if hdr == HeaderForwarded {
					elem = forwardedFor(elem)
				}
				if !yield(entry(elem)) {
					return
				}
			}
		}
	}
}

// forwardedFor returns the "for" parameter of one RFC 7239 element, or ""
// if it has none. Commas inside quoted strings are not supported; no node
// value needs them.
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// parseNode parses "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80" or
// "2001:db8::1". Obfuscated and unknown nodes ("_hidden", "unknown") and
// zoned addresses are not addresses.
func parseNode(s string) (netip.Addr, bool) {
	if len(s) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		host, _, err2 := net.SplitHostPort(s)
		if err2 != nil {
			host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// ParseForwardedHeader checks a -forwarded-header value.
func ParseForwardedHeader(s string) (string, bool) {
	switch {
	case strings.EqualFold(s, HeaderXForwardedFor):
		return HeaderXForwardedFor, true
	case strings.EqualFold(s, HeaderForwarded):
		return HeaderForwarded, true
	}
	return "", false
}
