// Package socks5 is a SOCKS5 client (RFC 1928, with RFC 1929 username and
// password authentication) for the upstream proxy Tor passes in
// TOR_PT_PROXY. It dials TCP through the proxy (CONNECT) and exchanges UDP
// datagrams through it (UDP ASSOCIATE), and wraps the latter as a pion
// transport.Net so that WebRTC's ICE traffic also goes through the proxy.
package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Protocol constants (RFC 1928, RFC 1929).
const (
	version5       = 0x05
	authNone       = 0x00
	authPassword   = 0x02
	authNoAccept   = 0xff
	cmdConnect     = 0x01
	cmdUDP         = 0x03
	atypIPv4       = 0x01
	atypDomain     = 0x03
	atypIPv6       = 0x04
	passwordVer    = 0x01
	handshakeLimit = 30 * time.Second
)

// Errors, to be tested with errors.Is.
var (
	ErrProtocol = errors.New("socks5: protocol error")
	ErrAuth     = errors.New("socks5: authentication failed")
)

// ReplyError is a request the proxy refused.
type ReplyError struct{ Code byte }

func (e *ReplyError) Error() string {
	msgs := map[byte]string{
		1: "general failure", 2: "connection not allowed by ruleset", 3: "network unreachable",
		4: "host unreachable", 5: "connection refused", 6: "TTL expired",
		7: "command not supported", 8: "address type not supported",
	}
	if m, ok := msgs[e.Code]; ok {
		return "socks5: " + m
	}
	return fmt.Sprintf("socks5: request failed with code %d", e.Code)
}

// Client talks to one SOCKS5 proxy.
type Client struct {
	addr     string // host:port
	user     string
	password string
	dialer   net.Dialer
}

// NewClient returns a client for the proxy at u (socks5://[user:pass@]host:port).
func NewClient(u *url.URL) *Client {
	c := &Client{addr: u.Host, dialer: net.Dialer{Timeout: handshakeLimit, KeepAlive: 30 * time.Second}}
	if u.User != nil {
		c.user = u.User.Username()
		c.password, _ = u.User.Password()
	}
	return c
}

// DialContext connects to addr (host:port) through the proxy. Host names
// are resolved by the proxy.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("socks5: network %q not supported", network)
	}
	conn, _, err := c.request(ctx, cmdConnect, addr)
	return conn, err
}

// request opens a control connection, authenticates and sends one command;
// it returns the connection and the bound address of the reply.
func (c *Client) request(ctx context.Context, cmd byte, addr string) (net.Conn, Addr, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, Addr{}, fmt.Errorf("socks5: connecting to proxy: %w", err)
	}
	deadline := time.Now().Add(handshakeLimit)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	bound, err := c.handshake(conn, cmd, addr)
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, Addr{}, ctx.Err()
		}
		return nil, Addr{}, err
	}
	conn.SetDeadline(time.Time{})
	return conn, bound, nil
}

func (c *Client) handshake(rw io.ReadWriter, cmd byte, addr string) (Addr, error) {
	methods := []byte{authNone}
	if c.user != "" || c.password != "" {
		methods = []byte{authNone, authPassword}
	}
	if _, err := rw.Write(append([]byte{version5, byte(len(methods))}, methods...)); err != nil {
		return Addr{}, err
	}
	var sel [2]byte
	if _, err := io.ReadFull(rw, sel[:]); err != nil {
		return Addr{}, fmt.Errorf("%w: reading method selection: %w", ErrProtocol, err)
	}
	if sel[0] != version5 {
		return Addr{}, fmt.Errorf("%w: server version %d", ErrProtocol, sel[0])
	}
	switch sel[1] {
	case authNone:
	case authPassword:
		if err := c.authenticate(rw); err != nil {
			return Addr{}, err
		}
	case authNoAccept:
		return Addr{}, fmt.Errorf("%w: no acceptable authentication method", ErrAuth)
	default:
		return Addr{}, fmt.Errorf("%w: unexpected method %d", ErrProtocol, sel[1])
	}
	dst, err := ParseAddr(addr)
	if err != nil {
		return Addr{}, err
	}
	req := append([]byte{version5, cmd, 0}, dst.appendTo(nil)...)
	if _, err := rw.Write(req); err != nil {
		return Addr{}, err
	}
	return ReadReply(rw)
}

func (c *Client) authenticate(rw io.ReadWriter) error {
	if len(c.user) > 255 || len(c.password) > 255 {
		return fmt.Errorf("%w: user name or password longer than 255 bytes", ErrAuth)
	}
	msg := []byte{passwordVer, byte(len(c.user))}
	msg = append(msg, c.user...)
	msg = append(msg, byte(len(c.password)))
	msg = append(msg, c.password...)
	if _, err := rw.Write(msg); err != nil {
		return err
	}
	var resp [2]byte
	if _, err := io.ReadFull(rw, resp[:]); err != nil {
		return fmt.Errorf("%w: reading authentication reply: %w", ErrProtocol, err)
	}
	if resp[1] != 0 {
		return ErrAuth
	}
	return nil
}

// Addr is a SOCKS address: an IP address or a domain name, and a port.
type Addr struct {
	IP   netip.Addr // valid unless Host is set
	Host string
	Port uint16
}

// String returns host:port.
func (a Addr) String() string {
	if a.Host != "" {
		return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
	}
	return netip.AddrPortFrom(a.IP, a.Port).String()
}

// ParseAddr parses host:port; host may be an IP address or a name.
func ParseAddr(s string) (Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, fmt.Errorf("socks5: bad address %q: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("socks5: bad port in %q", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return Addr{IP: ip.Unmap(), Port: uint16(p)}, nil
	}
	if host == "" || len(host) > 255 {
		return Addr{}, fmt.Errorf("socks5: bad host in %q", s)
	}
	return Addr{Host: host, Port: uint16(p)}, nil
}

// appendTo appends the ATYP, address and port encoding of a.
func (a Addr) appendTo(b []byte) []byte {
	switch {
	case a.Host != "":
		b = append(b, atypDomain, byte(len(a.Host)))
		b = append(b, a.Host...)
	case a.IP.Is4():
		ip := a.IP.As4()
		b = append(append(b, atypIPv4), ip[:]...)
	default:
		ip := a.IP.As16()
		b = append(append(b, atypIPv6), ip[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// ReadReply reads a server's reply to a request and returns the bound
// address, or a *ReplyError when the request failed.
func ReadReply(r io.Reader) (Addr, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Addr{}, fmt.Errorf("%w: reading reply: %w", ErrProtocol, err)
	}
	if hdr[0] != version5 {
		return Addr{}, fmt.Errorf("%w: reply version %d", ErrProtocol, hdr[0])
	}
	if hdr[1] != 0 {
		return Addr{}, &ReplyError{Code: hdr[1]}
	}
	return readAddr(r, hdr[3])
}

func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var a Addr
	switch atyp {
	case atypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Addr{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		a.IP = netip.AddrFrom4(b)
	case atypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Addr{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		a.IP = netip.AddrFrom16(b).Unmap()
	case atypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return Addr{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return Addr{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		a.Host = string(b)
	default:
		return Addr{}, fmt.Errorf("%w: address type %d", ErrProtocol, atyp)
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return Addr{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	a.Port = binary.BigEndian.Uint16(p[:])
	return a, nil
}
