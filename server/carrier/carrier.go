// Package carrier reads what a WebSocket brings to the bridge: the
// turbotunnel prologue, then encapsulated KCP packets, which it queues into
// a fair Intake that feeds one KCP engine (PROTOCOL.md §6.1, §6.2). It
// holds the parsing of untrusted carrier bytes, apart from the KCP and
// smux machinery, so that it can be fuzzed fast.
package carrier

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// MaxChunkLen is the longest data chunk accepted from a client. Clients keep
// KCP packets within turbotunnel.MaxPacketSize (PROTOCOL.md §6.2); a longer
// chunk means a broken or hostile peer, and its connection is closed.
const MaxChunkLen = turbotunnel.MaxPacketSize

// Errors that end a carrier stream.
var (
	ErrNoPrologue     = errors.New("closed before the prologue")
	ErrBadToken       = errors.New("wrong turbotunnel token")
	ErrShortPrologue  = errors.New("truncated prologue")
	ErrOversizedChunk = fmt.Errorf("chunk longer than %d bytes", MaxChunkLen)
	ErrMalformedChunk = errors.New("malformed chunk")
	ErrTruncatedChunk = errors.New("stream ended inside a chunk")
)

// ReadPrologue reads the token and ClientID that start every carrier stream
// (PROTOCOL.md §6.1).
func ReadPrologue(r io.Reader) (turbotunnel.ClientID, error) {
	var buf [len(turbotunnel.Token) + len(turbotunnel.ClientID{})]byte
	n, err := io.ReadFull(r, buf[:len(turbotunnel.Token)])
	switch {
	case err == io.EOF:
		return turbotunnel.ClientID{}, ErrNoPrologue
	case err == io.ErrUnexpectedEOF:
		return turbotunnel.ClientID{}, ErrShortPrologue
	case err != nil:
		return turbotunnel.ClientID{}, fmt.Errorf("reading prologue: %w", err)
	}
	if [8]byte(buf[:n]) != turbotunnel.Token {
		return turbotunnel.ClientID{}, ErrBadToken
	}
	if _, err := io.ReadFull(r, buf[n:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return turbotunnel.ClientID{}, ErrShortPrologue
		}
		return turbotunnel.ClientID{}, fmt.Errorf("reading prologue: %w", err)
	}
	return turbotunnel.ClientID(buf[n:]), nil
}

// Pump moves the data chunks read from r into in until r ends, storing the
// time (UnixNano) of each in lastData. onDrop is called for each packet
// dropped because in is full. It returns nil at a clean end of stream, or
// one of the chunk errors.
func Pump(r io.Reader, in *Inlet, lastData *atomic.Int64, onDrop func()) error {
	buf := make([]byte, MaxChunkLen)
	for {
		n, err := encapsulation.ReadData(r, buf)
		switch {
		case err == nil:
			lastData.Store(time.Now().UnixNano())
			if !in.Queue(buf[:n]) {
				onDrop()
			}
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
