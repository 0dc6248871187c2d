package handshake

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2Setting is one SETTINGS parameter, in the order sent.
type H2Setting struct {
	ID  uint16
	Val uint32
}

// H2Preface is what an HTTP/2 client sends first: the fingerprint fields
// of its connection preface and first request.
type H2Preface struct {
	Settings []H2Setting
	// WindowUpdate is the connection-level increment sent before the
	// first request (0 if none).
	WindowUpdate uint32
	// Frames are the frame types before the first HEADERS, in order,
	// SETTINGS acknowledgements left out.
	Frames []string
	// PseudoHeaders and Headers are the first request's header names in
	// the order sent.
	PseudoHeaders []string
	Headers       []string
	// HeaderValues maps the first request's headers to their values.
	HeaderValues map[string]string
	// Priority is the first HEADERS frame's priority field, if it had
	// one; HeadersFlags its flags.
	Priority     *http2.PriorityParam
	HeadersFlags http2.Flags
}

var h2Magic = []byte(http2.ClientPreface)

// maxH2Frames bounds the frames read before the first HEADERS.
const maxH2Frames = 32

// ParseH2Preface parses the start of a client's decrypted HTTP/2 stream.
func ParseH2Preface(b []byte) (*H2Preface, error) {
	if !bytes.HasPrefix(b, h2Magic) {
		return nil, fmt.Errorf("%w: no HTTP/2 client preface", ErrMalformed)
	}
	fr := http2.NewFramer(io.Discard, bytes.NewReader(b[len(h2Magic):]))
	fr.SetMaxReadFrameSize(1 << 20)
	p := &H2Preface{HeaderValues: map[string]string{}}
	var block []byte
	for i := 0; i < maxH2Frames; i++ {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return p, fmt.Errorf("HTTP/2 preface: no complete HEADERS: %w", ErrTruncated)
			}
			return p, fmt.Errorf("HTTP/2 preface: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			// An ACK answers the server's SETTINGS: whether it comes
			// before the first HEADERS is a matter of timing.
			if !f.IsAck() {
				p.Frames = append(p.Frames, "SETTINGS")
				f.ForeachSetting(func(s http2.Setting) error {
					p.Settings = append(p.Settings, H2Setting{ID: uint16(s.ID), Val: s.Val})
					return nil
				})
			}
		case *http2.WindowUpdateFrame:
			p.Frames = append(p.Frames, "WINDOW_UPDATE")
			if f.StreamID == 0 && p.WindowUpdate == 0 {
				p.WindowUpdate = f.Increment
			}
		case *http2.HeadersFrame:
			p.HeadersFlags = f.Flags
			if f.HasPriority() {
				pr := f.Priority
				p.Priority = &pr
			}
			block = append(block, f.HeaderBlockFragment()...)
			if f.HeadersEnded() {
				return p, p.decodeHeaders(block)
			}
		case *http2.ContinuationFrame:
			block = append(block, f.HeaderBlockFragment()...)
			if f.HeadersEnded() {
				return p, p.decodeHeaders(block)
			}
		default:
			p.Frames = append(p.Frames, f.Header().Type.String())
		}
	}
	return p, fmt.Errorf("%w: no HEADERS in the first %d frames", ErrMalformed, maxH2Frames)
}

func (p *H2Preface) decodeHeaders(block []byte) error {
	d := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.IsPseudo() {
			p.PseudoHeaders = append(p.PseudoHeaders, f.Name)
		} else {
			p.Headers = append(p.Headers, f.Name)
		}
		p.HeaderValues[f.Name] = f.Value
	})
	d.SetMaxStringLength(1 << 14)
	if _, err := d.Write(block); err != nil {
		return fmt.Errorf("HTTP/2 headers: %w", err)
	}
	return d.Close()
}
