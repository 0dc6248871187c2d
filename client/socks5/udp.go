package socks5

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxDatagram is the largest UDP payload handled, plus room for the header.
const maxDatagram = 65535

// PacketConn sends and receives UDP datagrams through a SOCKS5 UDP
// association. It implements net.PacketConn and pion's transport.UDPConn.
// The association lasts as long as its TCP control connection.
type PacketConn struct {
	ctrl  net.Conn
	udp   *net.UDPConn // connected to the relay
	relay *net.UDPAddr

	readMu sync.Mutex
	rbuf   []byte
	wpool  sync.Pool

	closeOnce sync.Once
}

// ListenUDP sets up a UDP association with the proxy.
func (c *Client) ListenUDP(ctx context.Context) (*PacketConn, error) {
	// The client's address is not known in advance; 0.0.0.0:0 asks the
	// proxy to accept datagrams from wherever they come.
	ctrl, bound, err := c.request(ctx, cmdUDP, "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	relay, err := relayAddr(bound, ctrl.RemoteAddr())
	if err != nil {
		ctrl.Close()
		return nil, err
	}
	udp, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		ctrl.Close()
		return nil, fmt.Errorf("socks5: connecting to UDP relay: %w", err)
	}
	pc := &PacketConn{ctrl: ctrl, udp: udp, relay: relay, rbuf: make([]byte, maxDatagram)}
	pc.wpool.New = func() any { b := make([]byte, 0, 2048); return &b }
	go func() {
		// The relay ends with the control connection.
		io.Copy(io.Discard, ctrl)
		pc.Close()
	}()
	return pc, nil
}

// relayAddr is the address datagrams go to: the bound address of the
// reply, or the proxy's own address when the reply leaves it unspecified.
func relayAddr(bound Addr, proxy net.Addr) (*net.UDPAddr, error) {
	if bound.Host != "" {
		return net.ResolveUDPAddr("udp", bound.String())
	}
	ip := bound.IP
	if !ip.IsValid() || ip.IsUnspecified() {
		tcp, ok := proxy.(*net.TCPAddr)
		if !ok {
			return nil, errors.New("socks5: cannot tell the UDP relay's address")
		}
		ip = tcp.AddrPort().Addr().Unmap()
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, bound.Port)), nil
}

// AppendDatagram appends the SOCKS5 UDP request header for dst and payload.
func AppendDatagram(b []byte, dst Addr, payload []byte) []byte {
	b = append(b, 0, 0, 0) // RSV, RSV, FRAG
	b = dst.appendTo(b)
	return append(b, payload...)
}

// ParseDatagram splits a datagram from the relay into its source address
// and payload (which aliases b). Fragmented datagrams are refused.
func ParseDatagram(b []byte) (Addr, []byte, error) {
	if len(b) < 4 {
		return Addr{}, nil, fmt.Errorf("%w: short datagram", ErrProtocol)
	}
	if b[2] != 0 {
		return Addr{}, nil, fmt.Errorf("%w: fragmented datagram", ErrProtocol)
	}
	var a Addr
	rest := b[4:]
	switch b[3] {
	case atypIPv4:
		if len(rest) < 4+2 {
			return Addr{}, nil, fmt.Errorf("%w: short datagram", ErrProtocol)
		}
		a.IP = netip.AddrFrom4([4]byte(rest[:4]))
		rest = rest[4:]
	case atypIPv6:
		if len(rest) < 16+2 {
			return Addr{}, nil, fmt.Errorf("%w: short datagram", ErrProtocol)
		}
		a.IP = netip.AddrFrom16([16]byte(rest[:16])).Unmap()
		rest = rest[16:]
	case atypDomain:
		if len(rest) < 1 || len(rest) < 1+int(rest[0])+2 {
			return Addr{}, nil, fmt.Errorf("%w: short datagram", ErrProtocol)
		}
		a.Host = string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
	default:
		return Addr{}, nil, fmt.Errorf("%w: address type %d", ErrProtocol, b[3])
	}
	a.Port = binary.BigEndian.Uint16(rest)
	return a, rest[2:], nil
}

// ReadFrom implements net.PacketConn. Datagrams from name-addressed sources
// and malformed ones are skipped.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromUDP(p)
	if err != nil {
		return n, nil, err
	}
	return n, a, nil
}

// ReadFromUDP implements transport.UDPConn.
func (c *PacketConn) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		n, err := c.udp.Read(c.rbuf)
		if err != nil {
			return 0, nil, err
		}
		src, payload, err := ParseDatagram(c.rbuf[:n])
		if err != nil || src.Host != "" {
			continue
		}
		if len(payload) > len(p) {
			return 0, nil, io.ErrShortBuffer
		}
		return copy(p, payload), net.UDPAddrFromAddrPort(netip.AddrPortFrom(src.IP, src.Port)), nil
	}
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("socks5: cannot send to %T", addr)
	}
	return c.WriteToUDP(p, ua)
}

// WriteToUDP implements transport.UDPConn.
func (c *PacketConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	ap := addr.AddrPort()
	bp := c.wpool.Get().(*[]byte)
	b := AppendDatagram((*bp)[:0], Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}, p)
	_, err := c.udp.Write(b)
	*bp = b
	c.wpool.Put(bp)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the association.
func (c *PacketConn) Close() error {
	c.closeOnce.Do(func() {
		c.ctrl.Close()
		c.udp.Close()
	})
	return nil
}

// LocalAddr implements net.PacketConn.
func (c *PacketConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// RemoteAddr implements transport.UDPConn: the relay's address.
func (c *PacketConn) RemoteAddr() net.Addr { return c.relay }

// SetDeadline implements net.PacketConn.
func (c *PacketConn) SetDeadline(t time.Time) error { return c.udp.SetDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *PacketConn) SetReadDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// SetWriteDeadline implements net.PacketConn.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }

// SetReadBuffer implements transport.UDPConn.
func (c *PacketConn) SetReadBuffer(n int) error { return c.udp.SetReadBuffer(n) }

// SetWriteBuffer implements transport.UDPConn.
func (c *PacketConn) SetWriteBuffer(n int) error { return c.udp.SetWriteBuffer(n) }

// Read implements transport.UDPConn (the source address is dropped).
func (c *PacketConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromUDP(p)
	return n, err
}

// Write implements transport.UDPConn; a SOCKS association has no default
// destination.
func (c *PacketConn) Write([]byte) (int, error) {
	return 0, errors.New("socks5: Write needs a destination; use WriteTo")
}

// ReadMsgUDP implements transport.UDPConn without ancillary data.
func (c *PacketConn) ReadMsgUDP(p, _ []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, addr, err = c.ReadFromUDP(p)
	return n, 0, 0, addr, err
}

// WriteMsgUDP implements transport.UDPConn without ancillary data.
func (c *PacketConn) WriteMsgUDP(p, _ []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	n, err = c.WriteToUDP(p, addr)
	return n, 0, err
}
