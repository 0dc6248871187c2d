// Package natbehavior is RFC 5780 NAT behaviour discovery over STUN: it finds
// out whether the client's NAT maps a local UDP port to the same public
// address whatever the destination (endpoint-independent mapping, reported to
// the broker as "unrestricted") or not ("restricted"), using STUN servers that
// send OTHER-ADDRESS (PROTOCOL.md §4.5). Only the mapping test is run; the
// filtering test is not needed to choose a broker NAT type.
package natbehavior

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v3"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

// RoundTripTimeout bounds each Binding request/response exchange.
const RoundTripTimeout = 10 * time.Second

// Errors, to be tested with errors.Is.
var (
	// ErrNoRFC5780 is a server whose responses lack OTHER-ADDRESS.
	ErrNoRFC5780 = errors.New("STUN server does not support RFC 5780 (no OTHER-ADDRESS)")
	// ErrNoServer means no usable stun: URL was given.
	ErrNoServer = errors.New("no stun: server to test the NAT with")
	// ErrTimeout is a Binding request that got no answer in time.
	ErrTimeout = errors.New("STUN request timed out")
)

// ListenFunc opens the UDP socket for a test. Both requests of one test use
// the same socket.
type ListenFunc func() (net.PacketConn, error)

// Prober runs mapping tests.
type Prober struct {
	// Listen opens the test socket; nil means an IPv4 UDP socket on an
	// ephemeral port.
	Listen ListenFunc
	// Resolve turns "host:port" into an address; nil means
	// net.ResolveUDPAddr("udp4", ...).
	Resolve func(ctx context.Context, hostport string) (netip.AddrPort, error)
	// Timeout overrides RoundTripTimeout when positive.
	Timeout time.Duration
}

// Discover tests against each server in turn (ICE URLs such as
// "stun:host:3478"; others are skipped) and returns the first result. When
// every server fails it returns nattype.Unknown and the last error.
func (p *Prober) Discover(ctx context.Context, urls []string) (string, error) {
	err := ErrNoServer
	for _, u := range urls {
		hostport, ok := ServerAddr(u)
		if !ok {
			continue
		}
		var nat string
		nat, err = p.Probe(ctx, hostport)
		if err == nil {
			return nat, nil
		}
		err = fmt.Errorf("%s: %w", hostport, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nattype.Unknown, err
}

// ServerAddr returns the "host:port" of a stun: ICE URL, adding the default
// port 3478. ok is false for other schemes and malformed URLs.
func ServerAddr(iceURL string) (hostport string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(iceURL), "stun:")
	if !found || rest == "" {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	if h, port, err := net.SplitHostPort(rest); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || h == "" {
			return "", false
		}
		return rest, true
	}
	host := strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]")
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return "", false
	}
	return net.JoinHostPort(host, "3478"), true
}

// Probe runs the mapping test against the server at hostport and returns
// nattype.Unrestricted or nattype.Restricted.
func (p *Prober) Probe(ctx context.Context, hostport string) (string, error) {
	server, err := p.resolve(ctx, hostport)
	if err != nil {
		return "", err
	}
	listen := p.Listen
	if listen == nil {
		listen = func() (net.PacketConn, error) { return net.ListenPacket("udp4", ":0") }
	}
	conn, err := listen()
	if err != nil {
		return "", err
	}
	defer conn.Close()

	first, err := p.roundTrip(ctx, conn, server)
	if err != nil {
		return "", err
	}
	mapped1, err := mappedAddr(first)
	if err != nil {
		return "", err
	}
	var other stun.OtherAddress
	if err := other.GetFrom(first); err != nil {
		return "", ErrNoRFC5780
	}
	otherAddr, ok := netip.AddrFromSlice(other.IP)
	if !ok || other.Port <= 0 || other.Port > 65535 {
		return "", ErrNoRFC5780
	}
	second, err := p.roundTrip(ctx, conn, netip.AddrPortFrom(otherAddr.Unmap(), uint16(other.Port)))
	if err != nil {
		return "", fmt.Errorf("test against OTHER-ADDRESS: %w", err)
	}
	mapped2, err := mappedAddr(second)
	if err != nil {
		return "", err
	}
	if mapped1 == mapped2 {
		return nattype.Unrestricted, nil
	}
	return nattype.Restricted, nil
}

func (p *Prober) resolve(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if p.Resolve != nil {
		return p.Resolve(ctx, hostport)
	}
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", hostport)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("no IPv4 address for %s", host)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(n)), nil
}

// roundTrip sends a Binding request to server and waits for the matching
// success response, retransmitting with doubling intervals (RFC 5389 §7.2.1)
// until the timeout.
func (p *Prober) roundTrip(ctx context.Context, conn net.PacketConn, server netip.AddrPort) (*stun.Message, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = RoundTripTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	to := net.UDPAddrFromAddrPort(server)
	buf := make([]byte, 1500)
	rto := 500 * time.Millisecond
	for {
		if _, err := conn.WriteTo(req.Raw, to); err != nil {
			return nil, fmt.Errorf("sending STUN request: %w", err)
		}
		resend := time.Now().Add(rto)
		rto *= 2
		if resend.After(deadline) {
			resend = deadline
		}
		conn.SetReadDeadline(resend)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("reading STUN response: %w", err)
			}
			res, ok := parseResponse(buf[:n], req.TransactionID)
			if ok {
				return res, nil
			}
		}
		if !time.Now().Before(deadline) {
			return nil, ErrTimeout
		}
	}
}

// parseResponse decodes a Binding success response for transaction id,
// ignoring anything else.
func parseResponse(b []byte, id [stun.TransactionIDSize]byte) (*stun.Message, bool) {
	if !stun.IsMessage(b) {
		return nil, false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return nil, false
	}
	if m.TransactionID != id || m.Type != stun.BindingSuccess {
		return nil, false
	}
	return m, true
}

// mappedAddr returns XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from servers that
// only send the old attribute.
func mappedAddr(m *stun.Message) (netip.AddrPort, error) {
	var ip net.IP
	var port int
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		ip, port = xor.IP, xor.Port
	} else {
		var plain stun.MappedAddress
		if err := plain.GetFrom(m); err != nil {
			return netip.AddrPort{}, errors.New("STUN response has no mapped address")
		}
		ip, port = plain.IP, plain.Port
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 65535 {
		return netip.AddrPort{}, errors.New("STUN response has a malformed mapped address")
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
