// Package safelog keeps IP addresses out of logs. Scrub replaces IPv4 and
// IPv6 addresses (with optional ports, brackets, percent-encoded brackets or
// colons) by "[scrubbed]", also where they follow a quoted string's escape
// such as \n or a percent-encoded character; NewLogger builds a log/slog
// logger that scrubs every attribute before it is quoted, and every output
// line again, unless unsafe logging was asked for (PROTOCOL.md §10.5).
package safelog

import (
	"bytes"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Replacement is what scrubbed addresses become.
const Replacement = "[scrubbed]"

// The patterns err on the side of scrubbing: they do not check that numbers
// are in range or that an IPv6 address has the right number of groups. What
// keeps them off version numbers, times and colon-separated fingerprints is
// the boundary rule in scrub: an address must not touch a letter, digit,
// underscore or colon on either side. Before an address, an escape of a
// quoted string (\n, \t, \x0a, \u00a0, ...) and a percent-encoded
// character other than a colon also count as a boundary: they stand for a
// character that would have been one.
const (
	v4   = `\d{1,3}(?:\.\d{1,3}){3}`
	hex  = `[0-9A-Fa-f]{1,4}`
	sep  = `(?::|%3[Aa])` // colons in query strings arrive percent-encoded
	port = `(?:` + sep + `\d{1,5})?`

	// Brackets around IPv6, also percent-encoded (%5B, %5D) as in URLs
	// carried in query strings.
	lbracket = `(?:\[|%5[Bb])`
	rbracket = `(?:\]|%5[Dd])`

	// Groups on either side of "::", fewest zero.
	v6Left  = `(?:` + hex + `(?:` + sep + hex + `){0,6})?`
	v6Right = `(?:` + hex + `(?:` + sep + hex + `){0,6})?`

	// Forms ending in an embedded IPv4 come first: the regexp package
	// prefers earlier alternatives, and a plain IPv6 form would otherwise
	// stop at the first dot and leave the IPv4 part behind.
	v6 = `(?:` +
		`(?:` + hex + sep + `){6}` + v4 +
		`|` + v6Left + sep + sep + `(?:` + hex + sep + `){0,5}` + v4 +
		`|(?:` + hex + sep + `){7}` + hex +
		`|` + v6Left + sep + sep + v6Right +
		`)`

	address = `(?:` + v4 + `|` + lbracket + v6 + rbracket + `|` + v6 + `)` + port

	// Before an address: a character that is neither a word character
	// nor a colon, a backslash escape, or a percent-encoded character
	// other than %3A (an encoded colon is a separator, as ':' is).
	// A raw boundary comes first, so that after "\a", "\b" or "\f" an
	// address starting with a hex letter is scrubbed from the letter on:
	// the backslash may itself be escaped ("\\"), and then the letter
	// belongs to the address.
	before = `(?:[^\w:]` +
		`|\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[A-Za-z])` +
		`|%(?:[0-24-9A-Fa-f][0-9A-Fa-f]|3[0-9B-Fb-f]))`

	// After an address: end of text, a character that is neither a word
	// character nor a colon, or a colon that ends the text or is followed by
	// a non-word character (as in "from 1.2.3.4: reason").
	after = `(?:$|[^\w:]|:(?:$|\W))`
)

// The two patterns, compiled by the platform's regular expression engine
// (match_native.go: Go's regexp; match_js.go: the browser's RegExp, which
// keeps Go's regexp out of the browser proxy). Both are leftmost-first and
// read these patterns alike.
const (
	// atStartPattern matches an address at the start of the text or after
	// a boundary character; the address is submatch 1.
	atStartPattern = `(?:^|` + before + `)(` + address + `)` + after
	// laterPattern is used wherever the text searched does not start at
	// the start of the line: there "^" would match wrongly, so a boundary
	// character is required.
	laterPattern = before + `(` + address + `)` + after
)

// isAddrChar reports whether c can be part of an address with its port:
// hex digits, dots, colons, brackets and the "%3A" of encoded colons.
func isAddrChar(c byte) bool {
	switch {
	case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		return true
	}
	return c == '.' || c == ':' || c == '%' || c == '[' || c == ']'
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// appendScrubbed appends b to dst with every address replaced.
//
// Running the regexps over a whole line is slow, so they only see windows
// around runs of address characters that hold a dot, colon or percent
// sign: the run plus the character before and after it, which is all the
// context the boundary rule looks at (two characters before it when they
// are a backslash and a letter, the start of an escape). The result is the
// same as matching the whole text.
func appendScrubbed(dst, b []byte) []byte {
	copied := 0
	for i := 0; i < len(b); {
		if !isAddrChar(b[i]) {
			i++
			continue
		}
		j, punct := i, false
		for ; j < len(b) && isAddrChar(b[j]); j++ {
			punct = punct || b[j] == '.' || b[j] == ':' || b[j] == '%'
		}
		if punct {
			lo, hi := max(i-1, 0), min(j+1, len(b))
			if i >= 2 && b[i-2] == '\\' && isLetter(b[i-1]) {
				lo = i - 2
			}
			re := later
			if i == 0 {
				re = atStart
			}
			for pos := lo; pos < hi; {
				m := re.FindSubmatchIndex(b[pos:hi])
				if m == nil {
					break
				}
				start, end := pos+m[2], pos+m[3]
				dst = append(dst, b[copied:start]...)
				dst = append(dst, Replacement...)
				copied = end
				// Resume at the address's end, not the match's: the
				// boundary character after one address may be the one
				// before the next.
				pos = end
				re = later
			}
		}
		i = j
	}
	return append(dst, b[copied:]...)
}

// Scrub returns s with every IP address replaced.
func Scrub(s string) string {
	if !mayContainAddress(s) {
		return s
	}
	return string(appendScrubbed(make([]byte, 0, len(s)), []byte(s)))
}

// mayContainAddress is a cheap filter: every address has a dot or a colon
// (possibly percent-encoded).
func mayContainAddress(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', ':', '%':
			return true
		}
	}
	return false
}

// maxPending bounds how much of an unterminated line a Writer holds.
const maxPending = 64 << 10

type writer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
	out     []byte
}

// NewWriter returns a writer that scrubs each complete line before passing it
// to w; a partial line is held until its newline arrives. Safe for concurrent
// use. A partial line longer than 64 KiB is flushed up to its last space or
// tab (addresses never contain one, so none is split), or whole if it has
// none.
func NewWriter(w io.Writer) io.Writer { return &writer{w: w} }

// Write buffers p and writes out every complete line, scrubbed, in one Write
// on the underlying writer. It reports len(p) unless that write fails.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	cut := bytes.LastIndexByte(w.pending, '\n') + 1
	if cut == 0 && len(w.pending) > maxPending {
		cut = bytes.LastIndexAny(w.pending, " \t") + 1
		if cut == 0 {
			cut = len(w.pending)
		}
	}
	if cut == 0 {
		return len(p), nil
	}
	w.out = appendScrubbed(w.out[:0], w.pending[:cut])
	// Keep the unfinished rest at the front of the buffer.
	rest := copy(w.pending, w.pending[cut:])
	w.pending = w.pending[:rest]
	if cap(w.pending) > maxPending && rest < maxPending/4 {
		w.pending = append([]byte(nil), w.pending...) // let a huge buffer go
	}
	if _, err := w.w.Write(w.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// NewLogger returns a text slog.Logger writing to w at level, scrubbing
// addresses unless unsafe is true. Times are UTC.
//
// The message and every attribute value are scrubbed before the handler
// quotes them: quoting turns a newline into "\n" and would glue an address
// to the letter n. The output lines are scrubbed again as a backstop.
func NewLogger(w io.Writer, level slog.Level, unsafe bool) *slog.Logger {
	replace := utcTime
	if !unsafe {
		w = NewWriter(w)
		replace = func(groups []string, a slog.Attr) slog.Attr {
			return scrubAttr(utcTime(groups, a))
		}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: replace,
	}))
}

func utcTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		a.Value = slog.TimeValue(a.Value.Time().UTC())
	}
	return a
}

// scrubAttr scrubs a string value, and any other value that the text
// handler would print as text (errors, Stringers, TextMarshalers, structs),
// after turning it into that text. Numbers, times and durations hold no
// address and are left alone. The handler resolves LogValuers and calls
// ReplaceAttr on the members of groups, so every leaf gets here.
func scrubAttr(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); mayContainAddress(s) {
			a.Value = slog.StringValue(Scrub(s))
		}
	case slog.KindAny:
		a.Value = slog.StringValue(Scrub(anyText(a.Value.Any())))
	}
	return a
}

// anyText formats v as slog's text handler does.
func anyText(v any) string {
	switch v := v.(type) {
	case encoding.TextMarshaler:
		b, err := v.MarshalText()
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(b)
	case []byte:
		return string(v)
	}
	return fmt.Sprintf("%+v", v)
}
