package turbotunnel

import (
	"context"
	"net"
	"time"
)

// DialFunc returns a new carrier connection whose prologue (Token, ClientID)
// has already been written. It blocks until a carrier is available or ctx is
// done.
type DialFunc func(ctx context.Context) (net.Conn, error)

// RedialPacketConn is the client side's net.PacketConn. It sends every packet
// written to it, encapsulated, over the current carrier; when the carrier
// fails it dials the next one and carries on, so that KCP above sees only
// packet loss. Reads return packets decapsulated from whichever carrier is
// current. See PROTOCOL.md §6.5.
type RedialPacketConn struct { /* TODO */
}

// NewRedialPacketConn starts a RedialPacketConn. localAddr is typically the
// ClientID; remoteAddr is what ReadFrom reports as the source. When dial
// returns an error the conn closes with that error.
func NewRedialPacketConn(localAddr, remoteAddr net.Addr, dial DialFunc) *RedialPacketConn {
	panic("TODO")
}

// ReadFrom implements net.PacketConn.
func (c *RedialPacketConn) ReadFrom(p []byte) (int, net.Addr, error) { panic("TODO") }

// WriteTo implements net.PacketConn; addr is ignored.
func (c *RedialPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) { panic("TODO") }

// Close implements net.PacketConn; it also closes the current carrier.
func (c *RedialPacketConn) Close() error { panic("TODO") }

// LocalAddr implements net.PacketConn.
func (c *RedialPacketConn) LocalAddr() net.Addr { panic("TODO") }

// SetDeadline implements net.PacketConn (only the read deadline is honoured).
func (c *RedialPacketConn) SetDeadline(t time.Time) error { panic("TODO") }

// SetReadDeadline implements net.PacketConn.
func (c *RedialPacketConn) SetReadDeadline(t time.Time) error { panic("TODO") }

// SetWriteDeadline implements net.PacketConn (not supported; returns nil).
func (c *RedialPacketConn) SetWriteDeadline(t time.Time) error { return nil }
