package amp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/html"
)

// The page around the payload. An AMP cache only serves valid AMP HTML, whose
// required markup is: the doctype, <html amp>, a UTF-8 charset declaration,
// the AMP runtime script, a canonical link, a viewport declaration, and the
// amp-boilerplate style with its noscript counterpart, whose text the AMP
// validator requires verbatim
// (https://amp.dev/documentation/guides-and-tutorials/learn/spec/amp-boilerplate/).
const (
	armorPrologue = "<!doctype html>\n" +
		"<html amp>\n" +
		"<head>\n" +
		"<meta charset=\"utf-8\">\n" +
		"<script async src=\"https://cdn.ampproject.org/v0.js\"></script>\n" +
		"<link rel=\"canonical\" href=\"#\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width\">\n" +
		"<style amp-boilerplate>" + ampBoilerplateCSS + "</style>" +
		"<noscript><style amp-boilerplate>" + ampNoscriptCSS + "</style></noscript>\n" +
		"</head>\n" +
		"<body>\n"
	armorEpilogue = "</body>\n</html>\n"

	ampBoilerplateCSS = "body{-webkit-animation:-amp-start 8s steps(1,end) 0s 1 normal both;" +
		"-moz-animation:-amp-start 8s steps(1,end) 0s 1 normal both;" +
		"-ms-animation:-amp-start 8s steps(1,end) 0s 1 normal both;" +
		"animation:-amp-start 8s steps(1,end) 0s 1 normal both}" +
		"@-webkit-keyframes -amp-start{from{visibility:hidden}to{visibility:visible}}" +
		"@-moz-keyframes -amp-start{from{visibility:hidden}to{visibility:visible}}" +
		"@-ms-keyframes -amp-start{from{visibility:hidden}to{visibility:visible}}" +
		"@-o-keyframes -amp-start{from{visibility:hidden}to{visibility:visible}}" +
		"@keyframes -amp-start{from{visibility:hidden}to{visibility:visible}}"
	ampNoscriptCSS = "body{-webkit-animation:none;-moz-animation:none;-ms-animation:none;animation:none}"
)

const (
	// armorVersion is the first payload character, outside the base64.
	armorVersion = '0'

	// maxTextToken bounds the text a decoder buffers for one HTML token;
	// the encoder keeps every <pre> element's text below it.
	maxTextToken = 32 * 1024

	// lineChars is the length of the payload lines. AMP caches are said
	// to truncate very long words, so the payload is cut into short ones.
	lineChars = 32

	// linesPerPre keeps each <pre> element's text, its opening newline
	// plus lines of lineChars+1 bytes, within maxTextToken: 992 lines.
	linesPerPre = (maxTextToken - 1) / (lineChars + 1)
)

// NewArmorEncoder returns a writer that armors what is written to it into an
// AMP HTML document on w; Close finishes the document.
//
// The payload is "0" followed by the standard base64 (with padding) of the
// data, in lines of 32 characters, 992 lines to a <pre> element. Close does
// not close w.
func NewArmorEncoder(w io.Writer) (io.WriteCloser, error) {
	if _, err := io.WriteString(w, armorPrologue); err != nil {
		return nil, err
	}
	lw := &lineWriter{w: w}
	if _, err := lw.Write([]byte{armorVersion}); err != nil {
		return nil, err
	}
	return &armorEncoder{lines: lw, b64: base64.NewEncoder(base64.StdEncoding, lw)}, nil
}

type armorEncoder struct {
	lines  *lineWriter
	b64    io.WriteCloser
	closed bool
}

func (e *armorEncoder) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errors.New("amp: write to closed armor encoder")
	}
	return e.b64.Write(p)
}

// Close flushes the last base64 quantum, closes the open <pre> element and
// writes the end of the page.
func (e *armorEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.b64.Close(); err != nil {
		return err
	}
	return e.lines.finish()
}

// lineWriter lays text out in lines and <pre> elements. The text must not
// need HTML escaping (base64 does not).
type lineWriter struct {
	w     io.Writer
	col   int    // characters on the current line
	lines int    // complete lines in the current element
	open  bool   // inside <pre>
	buf   []byte // output of one Write
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	b := lw.buf[:0]
	for rest := p; len(rest) > 0; {
		if !lw.open {
			b = append(b, "<pre>\n"...)
			lw.open = true
		}
		n := min(lineChars-lw.col, len(rest))
		b = append(b, rest[:n]...)
		rest = rest[n:]
		lw.col += n
		if lw.col == lineChars {
			b = append(b, '\n')
			lw.col = 0
			lw.lines++
			if lw.lines == linesPerPre {
				b = append(b, "</pre>\n"...)
				lw.lines = 0
				lw.open = false
			}
		}
	}
	lw.buf = b
	if _, err := lw.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// finish ends a partial line and an open element, then the page.
func (lw *lineWriter) finish() error {
	b := lw.buf[:0]
	if lw.open {
		if lw.col > 0 {
			b = append(b, '\n')
		}
		b = append(b, "</pre>\n"...)
		lw.open = false
	}
	b = append(b, armorEpilogue...)
	_, err := lw.w.Write(b)
	return err
}

// NewArmorDecoder returns a reader of the payload armored in the HTML read
// from r.
//
// Only text inside <pre> elements counts; ASCII whitespace in it is ignored.
// A nested <pre>, a </pre> without an open element, the end of input inside
// <pre>, an HTML text token over 32 KiB, a payload not starting with "0"
// (ErrUnknownArmorVersion) and invalid base64 are errors, reported by Read.
func NewArmorDecoder(r io.Reader) io.Reader {
	t := html.NewTokenizer(r)
	t.SetMaxBuf(maxTextToken)
	return &armorDecoder{text: &preText{tok: t}}
}

type armorDecoder struct {
	text *preText
	b64  io.Reader // nil until the version indicator has been read
	err  error
}

func (d *armorDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.b64 == nil {
		var v [1]byte
		if _, err := io.ReadFull(d.text, v[:]); err != nil {
			if err == io.EOF {
				err = errNoPayload
			}
			d.err = err
			return 0, err
		}
		if v[0] != armorVersion {
			d.err = fmt.Errorf("%w %q", ErrUnknownArmorVersion, v[0])
			return 0, d.err
		}
		d.b64 = base64.NewDecoder(base64.StdEncoding, d.text)
	}
	n, err := d.b64.Read(p)
	if err != nil && err != io.EOF {
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			err = fmt.Errorf("amp: invalid base64 payload: %w", err)
		}
		d.err = err
	}
	return n, err
}

var (
	errNoPayload   = fmt.Errorf("amp: no armored payload: %w", io.ErrUnexpectedEOF)
	errUnclosed    = errors.New("amp: missing </pre> tag")
	errNestedPre   = errors.New("amp: unexpected <pre> inside <pre>")
	errStrayEndPre = errors.New("amp: unexpected </pre>")
)

// preText reads the text inside <pre> elements with whitespace removed.
type preText struct {
	tok     *html.Tokenizer
	inPre   bool
	pending []byte // filtered text not yet read
	buf     []byte // backing store for pending, reused
	err     error
}

func (t *preText) Read(p []byte) (int, error) {
	for len(t.pending) == 0 {
		if t.err != nil {
			return 0, t.err
		}
		t.err = t.advance()
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

// advance consumes one token, leaving any payload text it holds in pending.
func (t *preText) advance() error {
	switch t.tok.Next() {
	case html.ErrorToken:
		err := t.tok.Err()
		if err == io.EOF && t.inPre {
			return errUnclosed
		}
		if errors.Is(err, html.ErrBufferExceeded) {
			return fmt.Errorf("amp: HTML token over %d bytes: %w", maxTextToken, err)
		}
		return err
	case html.TextToken:
		if t.inPre {
			t.buf = appendNonSpace(t.buf[:0], t.tok.Text())
			t.pending = t.buf
		}
	case html.StartTagToken:
		if isPre(t.tok) {
			if t.inPre {
				return errNestedPre
			}
			t.inPre = true
		}
	case html.EndTagToken:
		if isPre(t.tok) {
			if !t.inPre {
				return errStrayEndPre
			}
			t.inPre = false
		}
	}
	return nil
}

func isPre(t *html.Tokenizer) bool {
	name, _ := t.TagName()
	return string(name) == "pre"
}

// appendNonSpace appends text without ASCII whitespace (TAB, LF, FF, CR,
// SPACE, per the WHATWG Infra standard).
func appendNonSpace(dst, text []byte) []byte {
	for _, c := range text {
		switch c {
		case '\t', '\n', '\f', '\r', ' ':
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
