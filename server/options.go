package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// MaxNumTurbotunnel bounds the num-turbotunnel transport option.
const MaxNumTurbotunnel = 1024

// Options are the server transport options tor passes in
// TOR_PT_SERVER_TRANSPORT_OPTIONS (ServerTransportOptions in torrc).
type Options struct {
	// NumTurbotunnel is the number of KCP engines (num-turbotunnel).
	NumTurbotunnel int
	// ORPortSrcAddr, if valid, is the range from which each connection to
	// tor takes a random source address (orport-srcaddr).
	ORPortSrcAddr netip.Prefix
}

// ParseOptions reads the options this transport understands from args and
// ignores the rest, as the reference does.
func ParseOptions(args pt.Args) (Options, error) {
	opts := Options{NumTurbotunnel: 1}
	if s, ok := args.Get("num-turbotunnel"); ok {
		n, err := parseNumTurbotunnel(s)
		if err != nil {
			return Options{}, err
		}
		opts.NumTurbotunnel = n
	}
	if s, ok := args.Get("orport-srcaddr"); ok {
		p, err := ParseSrcAddr(s)
		if err != nil {
			return Options{}, err
		}
		opts.ORPortSrcAddr = p
	}
	return opts, nil
}

func parseNumTurbotunnel(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxNumTurbotunnel {
		return 0, fmt.Errorf("num-turbotunnel %+q: want an integer from 1 to %d", s, MaxNumTurbotunnel)
	}
	return n, nil
}

var errSrcAddr = errors.New("want an IP address or a CIDR range")

// ParseSrcAddr parses the orport-srcaddr option: an IP address (a range of
// one) or a CIDR range. Host bits in a CIDR are ignored.
func ParseSrcAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("orport-srcaddr %+q: %w", s, errSrcAddr)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("orport-srcaddr %+q: IPv4-mapped range: %w", s, errSrcAddr)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("orport-srcaddr %+q: %w", s, errSrcAddr)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// RandomAddr returns an address drawn uniformly from p. p must be valid.
func RandomAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		// Mask of the host bits within this byte.
		var host byte
		switch {
		case bits >= 8*(i+1):
			host = 0
		case bits <= 8*i:
			host = 0xff
		default:
			host = 0xff >> (bits - 8*i)
		}
		b[i] |= byte(rand.Uint32()) & host
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip
}
