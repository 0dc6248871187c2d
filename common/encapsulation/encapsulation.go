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
	"sync"
)

// MaxDataLen is the longest payload a three-byte prefix can describe.
const MaxDataLen = 1<<20 - 1

// MaxPrefixLen is the longest length prefix a writer emits or a reader accepts.
const MaxPrefixLen = 3

// MaxPaddingChunk is the largest padding chunk, prefix included, that
// WritePadding and AppendPadding emit.
const MaxPaddingChunk = 1024

// ErrTooLong is returned when a length prefix runs past three bytes.
var ErrTooLong = errors.New("encapsulation: length prefix is too long")

// ErrDataLen is returned by writers asked to frame more than MaxDataLen bytes
// or a negative padding length.
var ErrDataLen = errors.New("encapsulation: invalid data length")

const (
	flagData = 0x80 // first prefix byte: data (1) or padding (0)
	flagMore = 0x40 // first prefix byte: another length byte follows
	flagCont = 0x80 // later prefix bytes: another length byte follows
)

// appendPrefix appends the shortest prefix for a chunk of n bytes (0 ≤ n ≤
// MaxDataLen). flag is flagData or 0.
func appendPrefix(dst []byte, n int, flag byte) []byte {
	switch {
	case n < 1<<6:
		return append(dst, flag|byte(n))
	case n < 1<<13:
		return append(dst, flag|flagMore|byte(n>>7), byte(n&0x7f))
	default:
		return append(dst, flag|flagMore|byte(n>>14), flagCont|byte(n>>7&0x7f), byte(n&0x7f))
	}
}

// PrefixLen returns the length of the shortest prefix for an n-byte payload.
func PrefixLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<13:
		return 2
	default:
		return 3
	}
}

// AppendData appends the data chunk framing p to dst and returns the extended
// slice. It never retains p.
func AppendData(dst, p []byte) ([]byte, error) {
	if len(p) > MaxDataLen {
		return dst, ErrDataLen
	}
	dst = appendPrefix(dst, len(p), flagData)
	return append(dst, p...), nil
}

// pooledLen is the payload size up to which WriteData frames into a pooled
// buffer; it covers every KCP packet with room to spare.
const pooledLen = 4096

// writeBufs holds *[]byte of capacity MaxPrefixLen+pooledLen. Pointers keep
// Get and Put free of allocations.
var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, MaxPrefixLen+pooledLen)
	return &b
}}

// WriteData writes p as one data chunk with a single Write call on w, using
// the shortest length prefix. It returns the number of bytes of p written.
//
// The chunk is assembled in a pooled buffer, so WriteData does not allocate
// for payloads of up to 4096 bytes. The io.Writer contract forbids w from
// retaining the buffer, which is what makes reusing it safe.
func WriteData(w io.Writer, p []byte) (int, error) {
	if len(p) > MaxDataLen {
		return 0, ErrDataLen
	}
	var buf []byte
	var pooled *[]byte
	if len(p) <= pooledLen {
		pooled = writeBufs.Get().(*[]byte)
		buf = (*pooled)[:0]
	} else {
		buf = make([]byte, 0, MaxPrefixLen+len(p))
	}
	buf = appendPrefix(buf, len(p), flagData)
	prefix := len(buf)
	buf = append(buf, p...)
	n, err := w.Write(buf)
	if pooled != nil {
		*pooled = buf[:0]
		writeBufs.Put(pooled)
	}
	n -= prefix
	if n < 0 {
		n = 0
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// AppendPadding appends exactly n bytes of padding chunks (prefixes
// included, contents zero) to dst. Each chunk is at most MaxPaddingChunk
// bytes including its prefix. It is useful to send padding in the same
// message as the bytes before it.
func AppendPadding(dst []byte, n int) ([]byte, error) {
	if n < 0 {
		return dst, ErrDataLen
	}
	for n > 0 {
		total := min(n, MaxPaddingChunk)
		// A one-byte prefix describes up to 63 bytes, so chunks of up to 64
		// bytes use it; larger ones take two bytes (not always minimal, which
		// readers accept, and it keeps every total reachable exactly).
		plen := 1
		if total > 1<<6 {
			plen = 2
		}
		payload := total - plen
		if plen == 1 {
			dst = append(dst, byte(payload))
		} else {
			dst = append(dst, flagMore|byte(payload>>7), byte(payload&0x7f))
		}
		dst = append(dst, make([]byte, payload)...)
		n -= total
	}
	return dst, nil
}

// maxPaddingWrite bounds the buffer WritePadding builds before each Write.
const maxPaddingWrite = 64 * MaxPaddingChunk

// WritePadding writes exactly n bytes of padding chunks (prefixes included)
// to w. Each chunk is at most 1024 bytes including its prefix. Up to 64 KiB
// of padding goes out in a single Write.
func WritePadding(w io.Writer, n int) (int, error) {
	if n < 0 {
		return 0, ErrDataLen
	}
	written := 0
	var buf []byte
	for n > 0 {
		part := min(n, maxPaddingWrite)
		buf, _ = AppendPadding(buf[:0], part)
		m, err := w.Write(buf)
		written += m
		if err != nil {
			return written, err
		}
		if m < len(buf) {
			return written, io.ErrShortWrite
		}
		n -= part
	}
	return written, nil
}

// byteReader adapts an io.Reader without ReadByte, one byte per Read.
type byteReader struct {
	r io.Reader
	b [1]byte
}

func (br *byteReader) ReadByte() (byte, error) {
	_, err := io.ReadFull(br.r, br.b[:])
	return br.b[0], err
}

func (br *byteReader) Read(p []byte) (int, error) { return br.r.Read(p) }

type byteReaderReader interface {
	io.Reader
	io.ByteReader
}

// discarder is implemented by *bufio.Reader.
type discarder interface {
	Discard(n int) (int, error)
}

// readPrefix reads a chunk's length prefix. It returns io.EOF unchanged
// when the stream ends before the first prefix byte (a clean end).
func readPrefix(br io.ByteReader) (n int, data bool, err error) {
	b, err := br.ReadByte()
	if err != nil {
		return 0, false, err
	}
	data = b&flagData != 0
	n = int(b & 0x3f)
	more := b&flagMore != 0
	for i := 1; more; i++ {
		if i == MaxPrefixLen {
			return 0, false, ErrTooLong
		}
		b, err = br.ReadByte()
		if err != nil {
			return 0, false, noEOF(err)
		}
		n = n<<7 | int(b&0x7f)
		more = b&flagCont != 0
	}
	return n, data, nil
}

// noEOF turns io.EOF, which inside a chunk means truncation, into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// discard skips n bytes of r, using scratch when r cannot discard itself.
func discard(r io.Reader, n int, scratch []byte) error {
	if d, ok := r.(discarder); ok {
		_, err := d.Discard(n)
		return noEOF(err)
	}
	if len(scratch) == 0 {
		scratch = make([]byte, min(n, 4096))
	}
	for n > 0 {
		m, err := io.ReadFull(r, scratch[:min(n, len(scratch))])
		n -= m
		if err != nil {
			return noEOF(err)
		}
	}
	return nil
}

// ReadData reads the next data chunk from r into p, skipping any padding
// chunks before it, and returns the payload length. A chunk longer than p is
// consumed and discarded and io.ErrShortBuffer is returned (the stream stays
// in sync). io.EOF means the stream ended cleanly on a chunk boundary;
// io.ErrUnexpectedEOF means it ended inside a chunk.
// For efficiency r should be buffered (bufio.Reader satisfies io.ByteReader,
// which ReadData uses for prefixes); other readers are read one prefix byte
// at a time and cost an allocation per call.
func ReadData(r io.Reader, p []byte) (int, error) {
	var br byteReaderReader
	if rr, ok := r.(byteReaderReader); ok {
		br = rr
	} else {
		br = &byteReader{r: r}
	}
	for {
		n, data, err := readPrefix(br)
		if err != nil {
			return 0, err
		}
		if !data {
			if err := discard(br, n, p); err != nil {
				return 0, err
			}
			continue
		}
		if n > len(p) {
			if err := discard(br, n, p); err != nil {
				return 0, err
			}
			return 0, io.ErrShortBuffer
		}
		if _, err := io.ReadFull(br, p[:n]); err != nil {
			return 0, noEOF(err)
		}
		return n, nil
	}
}
