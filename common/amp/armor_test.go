package amp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/net/html"
)

func decodeArmor(s string) ([]byte, error) {
	return io.ReadAll(NewArmorDecoder(strings.NewReader(s)))
}

func TestArmorDecoder(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		err            error // checked with errors.Is when set
		fail           bool
	}{
		{name: "empty payload", in: "<pre>\n0\n</pre>\n", want: ""},
		{name: "simple", in: "<pre>\n0aGVsbG8gd29ybGQK\n</pre>", want: "hello world\n"},
		{name: "text outside pre ignored", in: "0QUJD\njunk <b>x</b>\n<pre>\n0aGVsbG8gd29ybGQK\n</pre>\nmore 0QUJD", want: "hello world\n"},
		{name: "split over elements", in: "<pre>0QUJD\nREVG</pre>junk<pre>\nR0g=</pre>", want: "ABCDEFGH"},
		{name: "padding alone in a later element", in: "<pre>\n0QUJD\nRA=</pre><pre>=</pre>", want: "ABCD"},
		{name: "other tags inside pre", in: "x <pre>0aGVsb<p>G8gd29</p>ybGQK</pre>", want: "hello world\n"},
		{name: "all ASCII whitespace", in: "<pre>\x200\x09aG\x0aV\x0csb\x0dG8\x20gd29ybGQK</pre>", want: "hello world\n"},
		{name: "uppercase tags", in: "<PRE>0aGVsbG8gd29ybGQK</Pre>", want: "hello world\n"},
		{name: "pre with attributes", in: `<pre class="x">0aGVsbG8gd29ybGQK</pre>`, want: "hello world\n"},
		{name: "entities decoded", in: "<pre>0aGVsbG8gd29ybGQ&#x4B;</pre>", want: "hello world\n"},

		{name: "bad version", in: "<pre>\n1aGVsbG8gd29ybGQK\n</pre>", err: ErrUnknownArmorVersion},
		{name: "no pre", in: "aGVsbG8gd29ybGQK\nblah", err: io.ErrUnexpectedEOF},
		{name: "empty pre elements", in: "0aGVs<pre>  </pre>x<pre></pre>y", err: io.ErrUnexpectedEOF},
		{name: "pre in a comment", in: "<!-- <pre>0aGVsbG8gd29ybGQK</pre> -->", err: io.ErrUnexpectedEOF},
		{name: "empty input", in: "", err: io.ErrUnexpectedEOF},
		{name: "bad padding", in: "<pre>0QUJDRA</pre><pre>=</pre>", fail: true},
		{name: "not base64", in: "<pre>0aGVs!G8g</pre>", fail: true},
		{name: "missing end tag", in: "<pre></pre><pre>0aGVsbG8gd29ybGQK", err: errUnclosed},
		{name: "nested pre", in: "<pre>0aGVsb<pre>G8gd29</pre>ybGQK</pre>", err: errNestedPre},
		{name: "stray end tag", in: "</pre><pre>0aGVsbG8gd29ybGQK</pre>", err: errStrayEndPre},
		{name: "stray end tag after payload", in: "<pre>0aGVsbG8gd29ybGQK</pre></pre>", err: errStrayEndPre},
		{name: "text token over 32 KiB", in: "<pre>0" + strings.Repeat("A", 40000) + "</pre>", err: html.ErrBufferExceeded},
		{name: "tag over 32 KiB", in: "<p title=\"" + strings.Repeat("A", 40000) + "\"><pre>0aGVsbG8gd29ybGQK</pre>", err: html.ErrBufferExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeArmor(tc.in)
			if tc.err == nil && !tc.fail {
				if err != nil || string(got) != tc.want {
					t.Fatalf("got (%q, %v), want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// TestArmorDecoderStickyError checks that an error is reported again rather
// than turning into a clean EOF.
func TestArmorDecoderStickyError(t *testing.T) {
	d := NewArmorDecoder(strings.NewReader("<pre>1</pre>"))
	var b [8]byte
	for range 3 {
		if _, err := d.Read(b[:]); !errors.Is(err, ErrUnknownArmorVersion) {
			t.Fatalf("error %v", err)
		}
	}
}

func encodeArmor(t testing.TB, data []byte, chunk int) string {
	t.Helper()
	var out strings.Builder
	enc, err := NewArmorEncoder(&out)
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		if m, err := enc.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write = (%d, %v), want %d", m, err, n)
		}
		rest = rest[n:]
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	return out.String()
}

func TestArmorEncoderExact(t *testing.T) {
	got := encodeArmor(t, []byte("hello world\n"), 100)
	want := armorPrologue + "<pre>\n0aGVsbG8gd29ybGQK\n</pre>\n" + armorEpilogue
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// Empty payload: just the version indicator.
	if got := encodeArmor(t, nil, 1); got != armorPrologue+"<pre>\n0\n</pre>\n"+armorEpilogue {
		t.Fatalf("empty payload:\n%s", got)
	}
	// 23 bytes are 32 base64 characters: "0" plus 31 fill the first
	// line, and the last one goes on the second, which Close ends.
	data := []byte("ABCDEFGHIJKLMNOPQRSTUVW")
	b64 := base64.StdEncoding.EncodeToString(data)
	want = armorPrologue + "<pre>\n0" + b64[:31] + "\n" + b64[31:] + "\n</pre>\n" + armorEpilogue
	if got := encodeArmor(t, data, 5); got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
}

// payloadLines returns the text of each <pre> element of an armored page.
func payloadLines(t *testing.T, page string) [][]string {
	t.Helper()
	body := strings.TrimPrefix(page, armorPrologue)
	if body == page || !strings.HasSuffix(body, armorEpilogue) {
		t.Fatal("prologue or epilogue missing")
	}
	body = strings.TrimSuffix(body, armorEpilogue)
	var elems [][]string
	for body != "" {
		inner, ok := strings.CutPrefix(body, "<pre>\n")
		if !ok {
			t.Fatalf("expected <pre> at %q", body[:min(len(body), 40)])
		}
		text, rest, ok := strings.Cut(inner, "</pre>\n")
		if !ok {
			t.Fatal("unterminated <pre>")
		}
		if len(text)+1 > maxTextToken {
			t.Fatalf("element text %d bytes", len(text)+1)
		}
		if !strings.HasSuffix(text, "\n") {
			t.Fatalf("element text does not end with a newline")
		}
		elems = append(elems, strings.Split(strings.TrimSuffix(text, "\n"), "\n"))
		body = rest
	}
	return elems
}

func TestArmorLayoutAndRoundTrip(t *testing.T) {
	// Payload characters for n bytes: 1 + 4*ceil(n/3). One element holds
	// 992*32 = 31744 characters, so 23807/23808 bytes cross into a second
	// element and 47615/47616 into a third.
	var lengths []int
	for n := range 70 {
		lengths = append(lengths, n)
	}
	for _, center := range []int{23807, 2 * 23808, maxTextToken, 2 * maxTextToken} {
		for n := center - 6; n <= center+6; n++ {
			lengths = append(lengths, n)
		}
	}
	for _, n := range lengths {
		data := make([]byte, n)
		rand.Read(data)
		page := encodeArmor(t, data, 1000)
		if n < 100 && encodeArmor(t, data, 1) != page {
			t.Fatalf("length %d: byte-wise writes differ", n)
		}
		elems := payloadLines(t, page)
		var all strings.Builder
		for i, lines := range elems {
			if i < len(elems)-1 && len(lines) != linesPerPre {
				t.Fatalf("length %d: element %d has %d lines", n, i, len(lines))
			}
			if len(lines) > linesPerPre || len(lines) == 0 {
				t.Fatalf("length %d: element %d has %d lines", n, i, len(lines))
			}
			for j, l := range lines {
				last := i == len(elems)-1 && j == len(lines)-1
				if len(l) != lineChars && !(last && len(l) > 0 && len(l) < lineChars) {
					t.Fatalf("length %d: line %d.%d has %d characters", n, i, j, len(l))
				}
				all.WriteString(l)
			}
		}
		wantText := "0" + base64.StdEncoding.EncodeToString(data)
		if all.String() != wantText {
			t.Fatalf("length %d: payload text differs", n)
		}
		wantElems := (len(wantText) + linesPerPre*lineChars - 1) / (linesPerPre * lineChars)
		if len(elems) != wantElems {
			t.Fatalf("length %d: %d elements, want %d", n, len(elems), wantElems)
		}
		got, err := decodeArmor(page)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("length %d: round trip error %v", n, err)
		}
	}
}

func TestArmorDecoderSmallReads(t *testing.T) {
	data := make([]byte, 30000)
	rand.Read(data)
	page := encodeArmor(t, data, 4096)
	d := NewArmorDecoder(iotest.OneByteReader(strings.NewReader(page)))
	if err := iotest.TestReader(d, data); err != nil {
		t.Fatal(err)
	}
}

// TestArmorIsAMP checks that the page carries the markup AMP requires.
func TestArmorIsAMP(t *testing.T) {
	page := encodeArmor(t, []byte(`{"answer":"x"}`), 100)
	if !strings.HasPrefix(page, "<!doctype html>\n") {
		t.Fatal("no doctype")
	}
	// As a validator sees it: without scripting, noscript holds elements.
	doc, err := html.ParseWithOptions(strings.NewReader(page), html.ParseOptionEnableScripting(false))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	var walk func(n *html.Node, inHead, inNoscript bool)
	walk = func(n *html.Node, inHead, inNoscript bool) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			has := map[string]bool{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
				has[a.Key] = true
			}
			switch {
			case n.Data == "html" && has["amp"]:
				found["html amp"] = true
			case n.Data == "head":
				inHead = true
			case n.Data == "noscript":
				inNoscript = true
			case n.Data == "meta" && inHead && strings.EqualFold(attr["charset"], "utf-8"):
				found["charset"] = true
			case n.Data == "meta" && inHead && attr["name"] == "viewport" && attr["content"] != "":
				found["viewport"] = true
			case n.Data == "script" && inHead && has["async"] && attr["src"] == "https://cdn.ampproject.org/v0.js":
				found["runtime"] = true
			case n.Data == "link" && inHead && attr["rel"] == "canonical" && attr["href"] != "":
				found["canonical"] = true
			case n.Data == "style" && has["amp-boilerplate"] && !inNoscript && strings.Contains(n.FirstChild.Data, "-amp-start"):
				found["boilerplate"] = true
			case n.Data == "style" && has["amp-boilerplate"] && inNoscript:
				found["noscript boilerplate"] = true
			case n.Data == "pre":
				found["pre"] = true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inHead, inNoscript)
		}
	}
	walk(doc, false, false)
	for _, k := range []string{"html amp", "charset", "viewport", "runtime", "canonical", "boilerplate", "noscript boilerplate", "pre"} {
		if !found[k] {
			t.Errorf("AMP page lacks %s", k)
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("broken")
	}
	w.after--
	return len(p), nil
}

func TestArmorEncoderWriteErrors(t *testing.T) {
	if _, err := NewArmorEncoder(&failWriter{}); err == nil {
		t.Fatal("prologue error lost")
	}
	enc, err := NewArmorEncoder(&failWriter{after: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(make([]byte, 3000)); err == nil {
		if err := enc.Close(); err == nil {
			t.Fatal("write error lost")
		}
	}
	if _, err := enc.Write([]byte("x")); err == nil {
		t.Fatal("write after failure accepted")
	}
}

func FuzzArmorDecoder(f *testing.F) {
	f.Add("<pre>\n0aGVsbG8gd29ybGQK\n</pre>")
	f.Add("<pre>0QUJD\nREVG</pre>junk<pre>\nR0g=</pre>")
	f.Add("<pre>0aGVsb<pre>G8gd29</pre>ybGQK</pre>")
	f.Add("</pre>")
	f.Add("<!-- <pre>0aGVsbG8gd29ybGQK</pre> --><script><pre></script>")
	f.Add(armorPrologue + "<pre>\n0eyJhbnN3ZXIiOiJ4In0=\n</pre>\n" + armorEpilogue)
	f.Fuzz(func(t *testing.T, page string) {
		data, err := decodeArmor(page)
		if err != nil {
			return
		}
		again, err := decodeArmor(encodeArmor(t, data, 777))
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-armored payload: (%q, %v), want %q", again, err, data)
		}
	})
}
