package messages

import (
	"strconv"
	"unicode/utf8"
)

// The broker encodes and decodes a proxy poll for every proxy every few
// seconds, so the hot messages are written by hand instead of through
// encoding/json's reflection. The output is byte-identical to json.Marshal
// of the equivalent struct (tests check this), which is what the reference
// implementations emit.

const hexDigits = "0123456789abcdef"

// jsonSafe[b] is true for the ASCII bytes json.Marshal copies verbatim into a
// string: printable characters other than '"', '\\' and the HTML-sensitive
// '<', '>' and '&'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// AppendJSONString appends s to dst as a JSON string literal, escaped exactly
// as encoding/json.Marshal escapes strings: HTML-sensitive characters, control
// characters, U+2028 and U+2029 as escapes, invalid UTF-8 as U+FFFD.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonStringLen estimates the encoded length of s, for sizing buffers: the
// common escapes in SDP text (\r\n and quotes) cost one extra byte each.
func jsonStringLen(s string) int {
	return len(s) + len(s)/8 + 2
}

// appendJSONKey appends `,"key":` (without the comma when first).
func appendJSONKey(dst []byte, key string, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// flatScanner walks a JSON object whose members are all plain: keys and
// string values made only of printable ASCII without escapes, values that
// are such strings, integers or null. It exists for a fast path; anything
// else makes it report failure, and the caller falls back to encoding/json,
// which then defines the result and the error text.
type flatScanner struct {
	data []byte
	i    int
	n    int // members seen
}

// Kinds of flat values.
const (
	flatString = iota + 1
	flatInt
	flatNull
)

func (s *flatScanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// begin consumes the opening brace.
func (s *flatScanner) begin() bool {
	s.skipSpace()
	if s.i >= len(s.data) || s.data[s.i] != '{' {
		return false
	}
	s.i++
	return true
}

// next returns the next member. more is false at the closing brace; ok is
// false when the input is not a flat object.
func (s *flatScanner) next() (key, val []byte, kind int, more, ok bool) {
	s.skipSpace()
	if s.i >= len(s.data) {
		return nil, nil, 0, false, false
	}
	if s.n > 0 {
		switch s.data[s.i] {
		case '}':
			s.i++
			return nil, nil, 0, false, s.end()
		case ',':
			s.i++
			s.skipSpace()
		default:
			return nil, nil, 0, false, false
		}
	} else if s.data[s.i] == '}' {
		s.i++
		return nil, nil, 0, false, s.end()
	}
	if key, ok = s.plainString(); !ok {
		return nil, nil, 0, false, false
	}
	s.skipSpace()
	if s.i >= len(s.data) || s.data[s.i] != ':' {
		return nil, nil, 0, false, false
	}
	s.i++
	s.skipSpace()
	if s.i >= len(s.data) {
		return nil, nil, 0, false, false
	}
	switch c := s.data[s.i]; {
	case c == '"':
		val, ok = s.plainString()
		kind = flatString
	case c == 'n':
		ok = len(s.data)-s.i >= 4 && string(s.data[s.i:s.i+4]) == "null"
		s.i += 4
		kind = flatNull
	case c == '-' || ('0' <= c && c <= '9'):
		val, ok = s.integer()
		kind = flatInt
	}
	if !ok {
		return nil, nil, 0, false, false
	}
	s.n++
	return key, val, kind, true, true
}

// end checks that only whitespace follows the object.
func (s *flatScanner) end() bool {
	s.skipSpace()
	return s.i == len(s.data)
}

func (s *flatScanner) plainString() ([]byte, bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.data); j++ {
		c := s.data[j]
		if c == '"' {
			s.i = j + 1
			return s.data[start:j], true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, false
		}
	}
	return nil, false
}

// integer accepts -?(0|[1-9][0-9]*) of at most 18 digits (so it cannot
// overflow an int64) followed by a delimiter.
func (s *flatScanner) integer() ([]byte, bool) {
	start := s.i
	j := s.i
	if s.data[j] == '-' {
		j++
	}
	digits := j
	for j < len(s.data) && '0' <= s.data[j] && s.data[j] <= '9' {
		j++
	}
	nd := j - digits
	if nd == 0 || nd > 18 || (nd > 1 && s.data[digits] == '0') {
		return nil, false
	}
	if j < len(s.data) {
		switch s.data[j] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return nil, false
		}
	}
	s.i = j
	return s.data[start:j], true
}

// atoi converts an integer accepted by flatScanner.integer.
func atoi(b []byte) (int, bool) {
	v, err := strconv.ParseInt(string(b), 10, strconv.IntSize)
	return int(v), err == nil
}
