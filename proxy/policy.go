package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/namematcher"
)

// Reasons a relay URL is refused. Errors returned by RelayPolicy wrap one
// of them.
var (
	ErrRelayURL     = errors.New("malformed relay URL")
	ErrRelayScheme  = errors.New("relay URL scheme not allowed")
	ErrRelayHost    = errors.New("relay hostname not allowed by the pattern")
	ErrRelayAddress = errors.New("relay address is not a public address")
)

// RelayPolicy decides which relays a broker may send this proxy's clients
// to.
type RelayPolicy struct {
	// Pattern is the allowed hostname pattern (common/namematcher): a domain
	// suffix matched on a label boundary, "^" for an exact name. Empty means
	// DefaultRelayPattern; "$" alone allows any name.
	Pattern string
	// AllowNonTLS admits ws:// as well as wss://.
	AllowNonTLS bool
	// AllowPrivate admits relays on private, loopback, link-local and other
	// non-public addresses.
	AllowPrivate bool
}

// Check parses raw and vets its scheme, hostname and (for an IP literal)
// address. A hostname's resolved addresses are vetted later, on the
// connection itself, with CheckAddr.
func (p RelayPolicy) Check(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRelayURL, err)
	}
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%w: not an absolute ws:// or wss:// URL", ErrRelayURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: user information is not allowed", ErrRelayURL)
	}
	switch u.Scheme {
	case "wss":
	case "ws":
		if !p.AllowNonTLS {
			return nil, fmt.Errorf("%w: ws:// without -allow-non-tls-relay", ErrRelayScheme)
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrRelayScheme, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w: no hostname", ErrRelayURL)
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("%w: empty port", ErrRelayURL)
	}
	if _, err := netip.ParseAddr(host); err != nil && looksNumeric(host) {
		// Names like "127.1" or "0x7f.0.0.1" are not IP literals to Go but
		// some resolvers (and browsers) read them as addresses; a relay
		// never needs one.
		return nil, fmt.Errorf("%w: numeric hostname %q", ErrRelayURL, host)
	}
	if !strings.HasPrefix(u.Host, "[") {
		// The name is checked, and dialled, in the ASCII form that URL
		// parsers and resolvers reach by IDNA mapping: a browser reads
		// "１２７.０.０.１" as 127.0.0.1, and so must the check.
		ascii, err := relayNameToASCII(host)
		if err != nil {
			return nil, fmt.Errorf("%w: hostname %q: %w", ErrRelayURL, host, err)
		}
		if ascii != host {
			host = ascii
			v := *u
			v.Host = host
			if port != "" {
				v.Host += ":" + port
			}
			u = &v
		}
	}
	pattern := p.Pattern
	if pattern == "" {
		pattern = DefaultRelayPattern
	}
	if !namematcher.New(pattern).IsMember(host) {
		return nil, fmt.Errorf("%w: %q does not match %q", ErrRelayHost, host, pattern)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(addr); err != nil {
			return nil, err
		}
	} else if looksNumeric(host) {
		// The same, after IDNA mapping ("１２７.１").
		return nil, fmt.Errorf("%w: numeric hostname %q", ErrRelayURL, host)
	}
	return u, nil
}

// CheckAddr reports whether the policy admits a connection to addr.
func (p RelayPolicy) CheckAddr(addr netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	if !isPublicAddr(addr) {
		return fmt.Errorf("%w: %s", ErrRelayAddress, addr)
	}
	return nil
}

// Ranges that are not public beyond what netip's predicates (private,
// loopback, link-local, multicast, unspecified) already cover.
// Documentation ranges are left out: they route nowhere, and test beds use
// them as stand-ins for public addresses.
var nonPublicPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.88.99.0/24"),     // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated)
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("2001::/32"),          // Teredo tunnels
	netip.MustParsePrefix("2001:2::/48"),        // benchmarking
	netip.MustParsePrefix("2001:10::/28"),       // ORCHID
	netip.MustParsePrefix("2001:20::/28"),       // ORCHIDv2
	netip.MustParsePrefix("5f00::/16"),          // SRv6 SIDs
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// isPublicAddr reports whether addr is a unicast address on the public
// Internet. Addresses that embed an IPv4 address (NAT64, 6to4) are judged by
// it, so that a NAT64 gateway cannot be used to reach a private IPv4 host.
func isPublicAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		b := addr.As16()
		if nat64Prefix.Contains(addr) {
			return isPublicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		}
		if sixToFour.Contains(addr) {
			return isPublicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return false
	}
	for _, p := range nonPublicPrefixes {
		if p.Contains(addr) {
			return false
		}
	}
	return iceaddr.IsPublic(addr)
}

// looksNumeric reports whether a hostname consists only of digits, dots
// and hex notation, i.e. would be read as an address by inet_aton.
func looksNumeric(host string) bool {
	last := host
	if i := strings.LastIndexByte(strings.TrimSuffix(host, "."), '.'); i >= 0 {
		last = strings.TrimSuffix(host, ".")[i+1:]
	}
	// A DNS name's last label (the TLD) is never all numeric; inet_aton's
	// forms always end in a number.
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") || strings.HasPrefix(last, "0X") {
		return true
	}
	for _, c := range last {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
