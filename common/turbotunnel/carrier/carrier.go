// Package carrier is the bridge's intake of carriers (PROTOCOL.md §6.1,
// §6.2): deadlines on a carrier's reads, and the fair Intake that feeds
// each KCP engine with the packets of all its carriers, as the PacketConn
// the engine runs on. The carrier pumps and the prologue themselves are
// in package turbotunnel, shared with the client's tests; this package
// holds no KCP or smux machinery, so that its fuzz target runs fast.
package carrier

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// DeadlineReader sets the read deadline before each read of Conn: the
// prologue must arrive within Prologue of Opened, and after it a data
// chunk within Idle of the last one (LastData, UnixNano, 0 before the
// first; Queue stores it). Padding does not count, so a peer that trickles
// padding to hold a carrier open is dropped all the same.
type DeadlineReader struct {
	Conn           net.Conn
	Opened         time.Time
	LastData       *atomic.Int64
	Prologue, Idle time.Duration
}

func (r DeadlineReader) Read(p []byte) (int, error) {
	var deadline time.Time
	if d := r.LastData.Load(); d == 0 {
		deadline = r.Opened.Add(r.Prologue)
	} else {
		deadline = time.Unix(0, d).Add(r.Idle)
	}
	if err := r.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	return r.Conn.Read(p)
}

// Queue returns a queue function for turbotunnel.PumpUp that queues into
// l, stores each packet's arrival time in lastData, and calls onDrop for
// each packet dropped because l holds too many.
func Queue(l *Inlet, lastData *atomic.Int64, onDrop func()) func(p []byte) {
	return func(p []byte) {
		lastData.Store(time.Now().UnixNano())
		if !l.Queue(p) {
			onDrop()
		}
	}
}

// EngineConn is the net.PacketConn a KCP engine runs on: reads come from
// the fair intake, writes go to the per-ClientID queues of the
// QueuePacketConn that the carriers drain (turbotunnel.PumpDown).
type EngineConn struct {
	*turbotunnel.QueuePacketConn
	In *Intake
}

// ReadFrom takes the next packet from the intake.
func (c *EngineConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.In.Read(p)
	if err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: "turbotunnel", Source: c.LocalAddr(), Err: err}
	}
	return n, addr, nil
}

// Close closes the intake and the QueuePacketConn.
func (c *EngineConn) Close() error {
	c.In.Close()
	return c.QueuePacketConn.Close()
}

// SetReadDeadline does nothing: deadlines are not supported, as on
// QueuePacketConn.
func (c *EngineConn) SetReadDeadline(time.Time) error { return nil }
