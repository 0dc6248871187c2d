//go:build js

package safelog

import "syscall/js"

// jsRegexp is a pattern compiled by the browser's RegExp. Go's regexp
// package is about a tenth of the browser proxy's download; the browser
// has an engine already.
type jsRegexp struct {
	re js.Value // with the "d" flag, for submatch indices; undefined if it did not compile
}

func compileJS(pattern string) *jsRegexp {
	r := &jsRegexp{re: js.Undefined()}
	func() {
		defer func() { recover() }() // a browser without the "d" flag
		r.re = js.Global().Get("RegExp").New(pattern, "d")
	}()
	return r
}

var (
	atStart = compileJS(atStartPattern)
	later   = compileJS(laterPattern)
)

// FindSubmatchIndex is regexp.Regexp's, for submatch 1 only, which is all
// appendScrubbed reads. Each byte of b becomes one character, bytes of
// multi-byte UTF-8 as a non-word character, so that indices are byte
// offsets and such bytes are boundaries, as they are to Go's regexp here
// (the windows it sees cut runes apart). Without a working RegExp every
// window is taken for an address: scrubbing errs on the safe side.
func (r *jsRegexp) FindSubmatchIndex(b []byte) []int {
	if r.re.IsUndefined() {
		if len(b) == 0 {
			return nil
		}
		return []int{0, len(b), 0, len(b)}
	}
	s := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x80 {
			c = 0x01
		}
		s[i] = c
	}
	m := r.re.Call("exec", string(s))
	if m.IsNull() {
		return nil
	}
	whole := m.Get("indices").Index(0)
	sub := m.Get("indices").Index(1)
	return []int{whole.Index(0).Int(), whole.Index(1).Int(), sub.Index(0).Int(), sub.Index(1).Int()}
}
