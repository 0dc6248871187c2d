// Package handshake parses TLS and DTLS handshakes as an observer on the
// path sees them (records, ClientHello, ServerHello, HelloVerifyRequest,
// Certificate) and computes the fingerprints censors match on: JA4, JA4S and
// the JA3 field lists, extension order, key shares, record versions and
// datagram sizes. It exists so tests can compare our handshakes with a
// browser's, field by field. Every parser takes untrusted bytes and returns
// an error, never panics.
package handshake

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Record content types (RFC 8446 §5.1, RFC 9147 §4).
const (
	ContentChangeCipherSpec = 20
	ContentAlert            = 21
	ContentHandshake        = 22
	ContentApplicationData  = 23
)

// Handshake message types.
const (
	TypeClientHello        = 1
	TypeServerHello        = 2
	TypeHelloVerifyRequest = 3
	TypeCertificate        = 11
	TypeServerKeyExchange  = 12
	TypeCertificateRequest = 13
	TypeServerHelloDone    = 14
)

// ErrTruncated reports input that ends inside a structure.
var ErrTruncated = errors.New("handshake: truncated")

// ErrMalformed reports input that is not the structure expected.
var ErrMalformed = errors.New("handshake: malformed")

// Record is one TLS or DTLS record.
type Record struct {
	ContentType uint8
	Version     uint16
	// Epoch and Seq are DTLS's (zero for TLS). A DTLS 1.3 ciphertext
	// record (unified header, RFC 9147 §4) has Unified set, its low epoch
	// bits in Epoch and no Version.
	Epoch   uint16
	Seq     uint64
	Unified bool
	// Header is the record header as sent; Fragment its payload.
	Header   []byte
	Fragment []byte
}

// Len is the record's size on the wire.
func (r Record) Len() int { return len(r.Header) + len(r.Fragment) }

// ParseDTLSRecords splits one datagram into its records.
func ParseDTLSRecords(datagram []byte) ([]Record, error) {
	var out []Record
	b := datagram
	for len(b) > 0 {
		r, n, err := parseDTLSRecord(b)
		if err != nil {
			return out, fmt.Errorf("record %d: %w", len(out)+1, err)
		}
		out = append(out, r)
		b = b[n:]
	}
	return out, nil
}

func parseDTLSRecord(b []byte) (Record, int, error) {
	if b[0]&0xe0 == 0x20 {
		return parseUnified(b)
	}
	if len(b) < 13 {
		return Record{}, 0, ErrTruncated
	}
	s := cryptobyte.String(b)
	var r Record
	var seqHi uint16
	var seqLo uint32
	var frag cryptobyte.String
	if !s.ReadUint8(&r.ContentType) || !s.ReadUint16(&r.Version) || !s.ReadUint16(&r.Epoch) ||
		!s.ReadUint16(&seqHi) || !s.ReadUint32(&seqLo) || !s.ReadUint16LengthPrefixed(&frag) {
		return Record{}, 0, ErrTruncated
	}
	if r.ContentType < ContentChangeCipherSpec || r.ContentType > 26 {
		return Record{}, 0, fmt.Errorf("%w: content type %d", ErrMalformed, r.ContentType)
	}
	r.Seq = uint64(seqHi)<<32 | uint64(seqLo)
	n := 13 + len(frag)
	r.Header, r.Fragment = b[:13], b[13:n]
	return r, n, nil
}

// parseUnified reads a DTLS 1.3 ciphertext record: 001CSLEE, then an
// optional connection ID (not used by WebRTC, so refused), a sequence
// number of 8 or 16 bits and an optional 16-bit length.
func parseUnified(b []byte) (Record, int, error) {
	flags := b[0]
	if flags&0x10 != 0 {
		return Record{}, 0, fmt.Errorf("%w: connection IDs are not supported", ErrMalformed)
	}
	h := 1
	seqLen := 1
	if flags&0x08 != 0 {
		seqLen = 2
	}
	if len(b) < h+seqLen {
		return Record{}, 0, ErrTruncated
	}
	var seq uint64
	for _, c := range b[h : h+seqLen] {
		seq = seq<<8 | uint64(c)
	}
	h += seqLen
	n := len(b)
	if flags&0x04 != 0 {
		if len(b) < h+2 {
			return Record{}, 0, ErrTruncated
		}
		l := int(b[h])<<8 | int(b[h+1])
		h += 2
		if len(b) < h+l {
			return Record{}, 0, ErrTruncated
		}
		n = h + l
	}
	return Record{
		ContentType: ContentApplicationData, Unified: true, Epoch: uint16(flags & 0x03), Seq: seq,
		Header: b[:h], Fragment: b[h:n],
	}, n, nil
}

// ParseTLSRecords splits a byte stream into its TLS records. A record cut
// off at the end is left in rest.
func ParseTLSRecords(stream []byte) (records []Record, rest []byte, err error) {
	b := stream
	for len(b) >= 5 {
		l := int(b[3])<<8 | int(b[4])
		if b[0] < ContentChangeCipherSpec || b[0] > 24 {
			return records, b, fmt.Errorf("%w: content type %d", ErrMalformed, b[0])
		}
		if l > 1<<14+2048 {
			return records, b, fmt.Errorf("%w: record of %d bytes", ErrMalformed, l)
		}
		if len(b) < 5+l {
			break
		}
		records = append(records, Record{
			ContentType: b[0], Version: uint16(b[1])<<8 | uint16(b[2]),
			Header: b[:5], Fragment: b[5 : 5+l],
		})
		b = b[5+l:]
	}
	return records, b, nil
}

// Message is one complete handshake message.
type Message struct {
	Type uint8
	// Seq is DTLS's message_seq (zero for TLS).
	Seq  uint16
	Body []byte
	// Fragments is how many pieces the message arrived in.
	Fragments int
}

// TLSMessages returns the handshake messages of the plaintext handshake
// records, joined across record boundaries. It stops at the first
// non-handshake record (the rest is encrypted from TLS 1.3's ServerHello
// on, or after ChangeCipherSpec in 1.2).
func TLSMessages(records []Record) ([]Message, error) {
	var buf []byte
	var out []Message
	for _, r := range records {
		if r.ContentType != ContentHandshake {
			break
		}
		buf = append(buf, r.Fragment...)
		for len(buf) >= 4 {
			l := int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
			if l > maxMessage {
				return out, fmt.Errorf("%w: handshake message of %d bytes", ErrMalformed, l)
			}
			if len(buf) < 4+l {
				break
			}
			out = append(out, Message{Type: buf[0], Body: buf[4 : 4+l], Fragments: 1})
			buf = buf[4+l:]
		}
	}
	return out, nil
}

// maxMessage bounds a reassembled handshake message: more than any hello
// or certificate chain seen in WebRTC or rendezvous, and small enough that a
// hostile length cannot make a test allocate much.
const maxMessage = 1 << 16
