package turbotunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// Errors of the bridge's upstream pump, which end the carrier.
var (
	// ErrOversizedChunk: a data chunk longer than MaxPacketSize.
	ErrOversizedChunk = fmt.Errorf("turbotunnel: chunk longer than %d bytes", MaxPacketSize)
	// ErrMalformedChunk: a length prefix longer than three bytes.
	ErrMalformedChunk = errors.New("turbotunnel: malformed chunk")
	// ErrTruncatedChunk: the carrier ended inside a chunk.
	ErrTruncatedChunk = errors.New("turbotunnel: stream ended inside a chunk")
)

// PumpUp is the bridge's upstream carrier pump: it decapsulates the data
// chunks read from r (the carrier after its prologue; buffer it,
// bufio.Reader) and hands each to queue, which must copy it before
// returning. Padding is skipped. It returns nil at a clean end of stream
// and one of the chunk errors above when the client breaks the framing.
//
// queue is a function because the packets go to different places: a
// QueuePacketConn (QueueTo), or the bridge's fair intake
// (common/turbotunnel/carrier).
func PumpUp(r io.Reader, queue func(p []byte)) error {
	buf := make([]byte, MaxPacketSize)
	for {
		n, err := encapsulation.ReadData(r, buf)
		switch {
		case err == nil:
			queue(buf[:n])
		case err == io.EOF:
			return nil
		case errors.Is(err, io.ErrShortBuffer):
			return ErrOversizedChunk
		case errors.Is(err, encapsulation.ErrTooLong):
			return ErrMalformedChunk
		case err == io.ErrUnexpectedEOF:
			return ErrTruncatedChunk
		default:
			return err
		}
	}
}

// QueueTo returns a queue function for PumpUp that queues packets into
// pconn as coming from id.
func QueueTo(pconn *QueuePacketConn, id ClientID) func(p []byte) {
	var addr net.Addr = id // converted once: an interface conversion allocates
	return func(p []byte) { pconn.QueueIncoming(p, addr) }
}

// PumpDown is the bridge's downstream carrier pump: it writes the packets
// KCP queued for id to conn, those already waiting batched into one write
// (up to MaxBatchSize), until done closes or a write fails. Each write has
// writeTimeout (if positive) as deadline, so a peer that stops reading
// holds one queue and one batch buffer for a bounded time. Every carrier of
// a ClientID drains the same queue, so downstream packets (the client's
// heartbeats' answers included) go out on whichever of its carriers is
// ready first.
func PumpDown(done <-chan struct{}, conn net.Conn, pconn *QueuePacketConn, id ClientID, writeTimeout time.Duration) error {
	q := pconn.OutgoingQueue(id)
	for {
		select {
		case <-done:
			return nil
		case p := <-q:
			// The batch buffer is borrowed only while writing: an idle
			// carrier then holds none of its 16 KiB.
			batch := batchPool.Get().(*[MaxBatchSize]byte)
			err := writeBatch(conn, pconn.AppendBatch(batch[:0], p, q), writeTimeout)
			batchPool.Put(batch)
			if err != nil {
				return err
			}
		}
	}
}

var batchPool = sync.Pool{New: func() any { return new([MaxBatchSize]byte) }}

func writeBatch(conn net.Conn, b []byte, timeout time.Duration) error {
	if timeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("turbotunnel: writing to carrier: %w", err)
	}
	return nil
}

// ServeCarrier runs both pumps over one carrier whose prologue (read from r,
// which buffers conn) named id: upstream into queue (see PumpUp),
// downstream from pconn's queue for id. It runs until either direction
// ends, then closes conn, and returns the first error, nil for a clean end.
func ServeCarrier(conn net.Conn, r io.Reader, queue func(p []byte), pconn *QueuePacketConn, id ClientID, writeTimeout time.Duration) error {
	done := make(chan struct{})
	downErr := make(chan error, 1)
	go func() {
		err := PumpDown(done, conn, pconn, id, writeTimeout)
		if err != nil {
			conn.Close() // a dead carrier: stop the upstream pump too
		}
		downErr <- err
	}()
	err := PumpUp(r, queue)
	close(done)
	conn.Close() // unblocks a downstream write in progress
	if derr := <-downErr; err == nil || errors.Is(err, net.ErrClosed) {
		err = derr
	}
	return err
}
