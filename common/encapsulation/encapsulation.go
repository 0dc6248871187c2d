// Package encapsulation implements the chunk framing that carries KCP packets
// over the byte streams of a Snowflake path (data channel and WebSocket).
//
// A stream is a sequence of chunks. Each chunk is a 1–3 byte length prefix
// followed by that many bytes. The first prefix byte holds a data/padding
// flag, a continuation flag and six length bits; each further byte holds a
// continuation flag and seven length bits. Padding chunks are skipped by
// readers. See PROTOCOL.md §6.2.
package encapsulation

import (
	"errors"
	"io"
)

// MaxDataLen is the longest payload a three-byte prefix can describe.
const MaxDataLen = 1<<20 - 1

// ErrTooLong is returned when a length prefix runs past three bytes.
var ErrTooLong = errors.New("encapsulation: length prefix is too long")

// ErrDataLen is returned by writers asked to frame more than MaxDataLen bytes
// or a negative padding length.
var ErrDataLen = errors.New("encapsulation: invalid data length")

// AppendData appends the data chunk framing p to dst and returns the extended
// slice. It never retains p.
func AppendData(dst, p []byte) ([]byte, error) { panic("TODO") }

// WriteData writes p as one data chunk with a single Write call on w, using
// the shortest length prefix. It returns the number of bytes of p written.
func WriteData(w io.Writer, p []byte) (int, error) { panic("TODO") }

// WritePadding writes exactly n bytes of padding chunks (prefixes included)
// to w. Each chunk is at most 1024 bytes including its prefix.
func WritePadding(w io.Writer, n int) (int, error) { panic("TODO") }

// ReadData reads the next data chunk from r into p, skipping any padding
// chunks before it, and returns the payload length. A chunk longer than p is
// consumed and discarded and io.ErrShortBuffer is returned (the stream stays
// in sync). io.EOF means the stream ended cleanly on a chunk boundary;
// io.ErrUnexpectedEOF means it ended inside a chunk.
// For efficiency r should be buffered (bufio.Reader satisfies io.ByteReader,
// which ReadData uses for prefixes).
func ReadData(r io.Reader, p []byte) (int, error) { panic("TODO") }
