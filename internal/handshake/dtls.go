package handshake

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Reassembler joins the fragments of DTLS handshake messages (RFC 6347
// §4.2.3, RFC 9147 §5.5) from plaintext handshake records of one direction.
// Retransmitted messages are reported once.
type Reassembler struct {
	partial map[uint16]*partialMessage
	done    map[uint16]bool
	out     []Message
}

type partialMessage struct {
	typ   uint8
	body  []byte
	have  []bool
	left  int
	frags int
}

// Add feeds one record. Records that are not plaintext handshake records
// (epoch 0) are ignored.
func (a *Reassembler) Add(r Record) error {
	if r.ContentType != ContentHandshake || r.Unified || r.Epoch != 0 {
		return nil
	}
	if a.partial == nil {
		a.partial = map[uint16]*partialMessage{}
		a.done = map[uint16]bool{}
	}
	s := cryptobyte.String(r.Fragment)
	for !s.Empty() {
		var typ uint8
		var length, offset, fragLen uint32
		var seq uint16
		var frag []byte
		if !s.ReadUint8(&typ) || !s.ReadUint24(&length) || !s.ReadUint16(&seq) ||
			!s.ReadUint24(&offset) || !s.ReadUint24(&fragLen) || !s.ReadBytes(&frag, int(fragLen)) {
			return ErrTruncated
		}
		if length > maxMessage || offset+fragLen > length {
			return fmt.Errorf("%w: fragment %d+%d of a %d-byte message", ErrMalformed, offset, fragLen, length)
		}
		if a.done[seq] {
			continue
		}
		p := a.partial[seq]
		if p == nil {
			if len(a.partial) >= maxPartial {
				return fmt.Errorf("%w: more than %d messages in reassembly", ErrMalformed, maxPartial)
			}
			p = &partialMessage{typ: typ, body: make([]byte, length), have: make([]bool, length), left: int(length)}
			a.partial[seq] = p
		}
		if p.typ != typ || len(p.body) != int(length) {
			return fmt.Errorf("%w: message %d changes type or length between fragments", ErrMalformed, seq)
		}
		p.frags++
		for i := range frag {
			j := int(offset) + i
			if !p.have[j] {
				p.have[j] = true
				p.body[j] = frag[i]
				p.left--
			}
		}
		if p.left == 0 {
			a.out = append(a.out, Message{Type: p.typ, Seq: seq, Body: p.body, Fragments: p.frags})
			a.done[seq] = true
			delete(a.partial, seq)
		}
	}
	return nil
}

// maxPartial bounds the messages reassembled at once.
const maxPartial = 16

// Messages returns the complete messages, in order of completion.
func (a *Reassembler) Messages() []Message { return a.out }

// Flight is one direction of a DTLS handshake as seen on the wire.
type Flight struct {
	// Datagrams are the sizes of the datagrams sent, in order.
	Datagrams []int
	// Records are every record in the datagrams, in order.
	Records []Record
	// Messages are the plaintext handshake messages, reassembled.
	Messages []Message
}

// ParseDTLSDirection parses the datagrams one peer sent.
func ParseDTLSDirection(datagrams [][]byte) (*Flight, error) {
	f := &Flight{}
	var a Reassembler
	for i, d := range datagrams {
		f.Datagrams = append(f.Datagrams, len(d))
		recs, err := ParseDTLSRecords(d)
		f.Records = append(f.Records, recs...)
		if err != nil {
			return f, fmt.Errorf("datagram %d: %w", i+1, err)
		}
		for _, r := range recs {
			if err := a.Add(r); err != nil {
				return f, fmt.Errorf("datagram %d: %w", i+1, err)
			}
		}
	}
	f.Messages = a.Messages()
	return f, nil
}

// Message returns the first message of type t, or nil.
func (f *Flight) Message(t uint8) *Message {
	for i := range f.Messages {
		if f.Messages[i].Type == t {
			return &f.Messages[i]
		}
	}
	return nil
}
