package broker

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
)

// remoteAddr returns the address a request came from: the TCP peer, or,
// behind a trusted front (Config.TrustForwarded), the leftmost public
// address of the Forwarded header, else of X-Forwarded-For.
func (b *Broker) remoteAddr(r *http.Request) netip.Addr {
	if b.cfg.TrustForwarded {
		if a, ok := forwardedAddr(r.Header); ok {
			return a
		}
	}
	return peerAddr(r.RemoteAddr)
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

// forwardedAddr looks through the Forwarded (RFC 7239) "for" parameters,
// then X-Forwarded-For, for the leftmost public address.
func forwardedAddr(h http.Header) (netip.Addr, bool) {
	for _, line := range h.Values("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				if a, ok := parseNode(strings.Trim(v, `"`)); ok {
					return a, true
				}
			}
		}
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for elem := range strings.SplitSeq(line, ",") {
			if a, ok := parseNode(strings.TrimSpace(elem)); ok {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// parseNode parses "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80" or
// "2001:db8::1", keeping it only if it is a public address.
func parseNode(s string) (netip.Addr, bool) {
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
	a = a.Unmap()
	if a.Zone() != "" || !iceaddr.IsPublic(a) {
		return netip.Addr{}, false
	}
	return a, true
}
