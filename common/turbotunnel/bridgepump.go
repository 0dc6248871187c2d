package turbotunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
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

// PumpUp is the bridge's upstream carrier pump: it decapsulates packets
// from r (the carrier after its prologue; buffer it, bufio.Reader) into
// pconn as packets from id. It returns nil at a clean end of stream and an
// error wrapping one of the chunk errors above when the client breaks the
// framing. Padding is skipped.
func PumpUp(r io.Reader, pconn *QueuePacketConn, id ClientID) error {
	buf := make([]byte, MaxPacketSize)
	var addr net.Addr = id // converted once: an interface conversion allocates
	for {
		n, err := encapsulation.ReadData(r, buf)
		switch {
		case err == nil:
			pconn.QueueIncoming(buf[:n], addr)
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

// PumpDown is the bridge's downstream carrier pump: it writes the packets
// KCP queued for id to conn, those already waiting batched into one write
// (up to MaxBatchSize), until done closes or a write fails. Each write has
// writeTimeout (if positive) as deadline, so a peer that stops reading
// holds one queue and one batch buffer for a bounded time. Every carrier of
// a ClientID drains the same queue, so downstream packets go out on
// whichever of its carriers is ready first.
func PumpDown(done <-chan struct{}, conn net.Conn, pconn *QueuePacketConn, id ClientID, writeTimeout time.Duration) error {
	q := pconn.OutgoingQueue(id)
	buf := make([]byte, 0, MaxBatchSize)
	for {
		select {
		case <-done:
			return nil
		case p := <-q:
			buf = pconn.AppendBatch(buf[:0], p, q)
			if writeTimeout > 0 {
				if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
					return err
				}
			}
			if _, err := conn.Write(buf); err != nil {
				return fmt.Errorf("turbotunnel: writing to carrier: %w", err)
			}
		}
	}
}

// ServeCarrier runs both pumps over one carrier whose prologue (read from r,
// which buffers conn) named id, until either direction ends; it then closes
// conn. It returns the first error, nil for a clean end.
func ServeCarrier(conn net.Conn, r io.Reader, pconn *QueuePacketConn, id ClientID, writeTimeout time.Duration) error {
	done := make(chan struct{})
	downErr := make(chan error, 1)
	go func() {
		err := PumpDown(done, conn, pconn, id, writeTimeout)
		if err != nil {
			conn.Close() // a dead carrier: stop the upstream pump too
		}
		downErr <- err
	}()
	err := PumpUp(r, pconn, id)
	close(done)
	conn.Close() // unblocks a downstream write in progress
	if derr := <-downErr; err == nil || errors.Is(err, net.ErrClosed) {
		err = derr
	}
	return err
}
