package turbotunnel

import (
	"net"
	"time"
)

// QueuePacketConn is the bridge side's net.PacketConn. Carrier connections
// (WebSockets) feed incoming packets with QueueIncoming and drain the packets
// KCP writes to a ClientID with OutgoingQueue. Per-client outgoing queues are
// kept for timeout after their last use so a client can pick them up through
// its next proxy.
type QueuePacketConn struct { /* TODO */
}

// NewQueuePacketConn returns a QueuePacketConn whose LocalAddr is localAddr and
// whose idle per-client queues expire after timeout.
func NewQueuePacketConn(localAddr net.Addr, timeout time.Duration) *QueuePacketConn { panic("TODO") }

// QueueIncoming queues a copy of p as a packet from addr for ReadFrom. It
// drops the packet if the incoming queue is full or the conn is closed. p may
// be reused by the caller as soon as QueueIncoming returns.
func (c *QueuePacketConn) QueueIncoming(p []byte, addr net.Addr) { panic("TODO") }

// OutgoingQueue returns the queue of packets written to addr. Each received
// slice belongs to the receiver until it passes it back with Restore.
func (c *QueuePacketConn) OutgoingQueue(addr net.Addr) <-chan []byte { panic("TODO") }

// Restore returns a buffer obtained from OutgoingQueue for reuse once the
// receiver is completely done with it. Calling it is optional.
func (c *QueuePacketConn) Restore(p []byte) { panic("TODO") }

// ReadFrom implements net.PacketConn.
func (c *QueuePacketConn) ReadFrom(p []byte) (int, net.Addr, error) { panic("TODO") }

// WriteTo implements net.PacketConn. It copies p into addr's outgoing queue,
// dropping it if the queue is full. Packets longer than MaxPacketSize are
// dropped.
func (c *QueuePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) { panic("TODO") }

// Close implements net.PacketConn.
func (c *QueuePacketConn) Close() error { panic("TODO") }

// LocalAddr implements net.PacketConn.
func (c *QueuePacketConn) LocalAddr() net.Addr { panic("TODO") }

// SetDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetDeadline(t time.Time) error { return nil }

// SetReadDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetReadDeadline(t time.Time) error { return nil }

// SetWriteDeadline implements net.PacketConn (deadlines are not supported).
func (c *QueuePacketConn) SetWriteDeadline(t time.Time) error { return nil }
