package safelog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestScrubAddresses(t *testing.T) {
	// Each of these is one address and must vanish completely.
	for _, addr := range []string{
		"1.2.3.4",
		"255.255.255.255",
		"1.2.3.4:55",
		"255.255.255.255:65535",
		"1:2:3:4:c:d:e:f",
		"1111:2222:3333:4444:CCCC:DDDD:EEEE:FFFF",
		"[1:2:3:4:c:d:e:f]",
		"[1:2:3:4:c:d:e:f]:55",
		"[1111:2222:3333:4444:CCCC:DDDD:EEEE:FFFF]:65535",
		"::d:e:f",
		"1:2:3::",
		"1:2:3::d:e:f",
		"1111:2222:3333::DDDD:EEEE:FFFF",
		"[::d:e:f]",
		"[1:2:3::]",
		"[1:2:3:4:5:6::8]",
		"[1::7:8]",
		"[1::]:58344",
		"[1111:2222:3333::DDDD:EEEE:FFFF]:65535",
		"::1",
		"::",
		"[::]:443",
		"::255.255.255.255",
		"::ffff:255.255.255.255",
		"[::ffff:255.255.255.255]:65535",
		"[::ffff:0:255.255.255.255]",
		"[2001:db8:3:4::192.0.2.33]",
		"1:2:3:4:5:6:192.0.2.33",
		"2001%3Adb8%3A%3A1",
		"2001%3adb8%3a%3a1",
		"2001%3Adb8%3A0%3A0%3A0%3A0%3A0%3A1",
		"%3A%3Affff%3A192.0.2.1",
	} {
		for _, ctx := range []string{"%s", " %s ", "addr=%s\n", "(%s)", "{%s}", `"%s"`, "from %s: reason", "at %s."} {
			in := fmt.Sprintf(ctx, addr)
			want := fmt.Sprintf(ctx, Replacement)
			if got := Scrub(in); got != want {
				t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
			}
		}
	}
}

func TestScrubMessages(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http: TLS handshake error from 129.97.208.23:38310: EOF",
			"http: TLS handshake error from [scrubbed]: EOF"},
		{"http2: panic serving [2620:101:f000:780:9097:75b1:519f:dbb8]:58344: interface conversion",
			"http2: panic serving [scrubbed]: interface conversion"},
		{"dial wss://192.0.2.7:443/path?x=1", "dial wss://[scrubbed]/path?x=1"},
		{"GET /?client_ip=2001%3Adb8%3A%3A1 HTTP/1.1", "GET /?client_ip=[scrubbed] HTTP/1.1"},
		{"relay ws://[2001:db8::1]:8080/ ok", "relay ws://[scrubbed]/ ok"},
		// Adjacent addresses share a boundary character.
		{"1.2.3.4,5.6.7.8", "[scrubbed],[scrubbed]"},
		{"1.2.3.4 5.6.7.8 9.9.9.9", "[scrubbed] [scrubbed] [scrubbed]"},
		{"peers=[::1]:1,[::2]:2", "peers=[scrubbed],[scrubbed]"},
		{"fe80::1%eth0", "[scrubbed]%eth0"},
		{"a=candidate:1 1 udp 2122 192.0.2.1 50000 typ host",
			"a=candidate:1 1 udp 2122 [scrubbed] 50000 typ host"},
		{"c=IN IP6 2001:db8::5\r\n", "c=IN IP6 [scrubbed]\r\n"},
		{"msg=\"from 192.0.2.1\\n to ::1\"", "msg=\"from [scrubbed]\\n to [scrubbed]\""},
		// Quoted strings: an escape before the address is a boundary.
		{`err="dial\n10.9.8.7:443"`, `err="dial\n[scrubbed]"`},
		{`err="a\t10.9.8.7 b\r2001:db8::1"`, `err="a\t[scrubbed] b\r[scrubbed]"`},
		{`"\x0010.9.8.7" "\u00a0192.0.2.1:80" "\bfe80::1"`, `"\x00[scrubbed]" "\u00a0[scrubbed]" "\b[scrubbed]"`},
		{`s="\\n10.9.8.7"`, `s="\\n[scrubbed]"`},
		// Percent-encoded brackets, colons and other characters.
		{"GET /?ip=%5B2001:db8::1%5D:443 x", "GET /?ip=[scrubbed] x"},
		{"GET /?ip=%5b2001%3Adb8%3A%3A1%5d%3A443&y", "GET /?ip=[scrubbed]&y"},
		{"u=ws%3A%2F%2F%5B2001%3Adb8%3A%3A7%5D%3A80%2F", "u=ws%3A%2F%2F[scrubbed]%2F"},
		{"relay=wss%3A%2F%2F192.0.2.8%3A443%2Fp", "relay=wss%3A%2F%2F[scrubbed]%2Fp"},
		{"q=a%3D10.1.2.3%26b", "q=a%3D[scrubbed]%26b"},
	} {
		if got := Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrubKeeps(t *testing.T) {
	for _, s := range []string{
		"",
		"snowflake 2.5.1",
		"version 1.0",
		"v1.2.3",
		"15:04:05",
		"time=2026-01-02T15:04:05.123Z level=INFO",
		"12:30 and 10:00:00:00",
		"a=fingerprint:sha-256 33:B6:FA:F6:94:CA:74:61:45:4A:D2:1F:2C:2F:75:8A:D9:EB:23:34:B2:30:E9:1B:2A:A6:A9:E0:44:72:CC:74",
		"fingerprint 2B280B23E1107BB62ABFC40DDCC8824814F80A72",
		"id 123e4567-e89b-12d3-a456-426614174000",
		"std::string",
		"ratio 1.5, 3.25",
		"50%3Dhalf",
		"aaaa:bbbb:cccc:dddd:eeee:ffff:1111:2222:abcd",
		"1.2.3.4567",
		"[scrubbed]",
	} {
		if got := Scrub(s); got != s {
			t.Errorf("Scrub(%q) = %q, want it unchanged", s, got)
		}
	}
}

type recorder struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.calls = append(r.calls, string(p))
	return len(p), nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, "")
}

func TestWriterSplitAddress(t *testing.T) {
	var rec recorder
	w := NewWriter(&rec)
	input := "first\nserving [2620:101:f000:780:9097:75b1:519f:dbb8]:58344: done\ntail"
	for _, piece := range []string{input[:8], input[8:30], input[30:52], input[52:]} {
		n, err := w.Write([]byte(piece))
		if n != len(piece) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", piece, n, err)
		}
		if strings.Contains(rec.String(), "2620") {
			t.Fatalf("part of an address got out: %q", rec.String())
		}
	}
	if got, want := rec.String(), "first\nserving [scrubbed]: done\n"; got != want {
		t.Fatalf("wrote %q, want %q (partial line held back)", got, want)
	}
	w.Write([]byte(" 192.0.2.1\n"))
	if got := rec.calls[len(rec.calls)-1]; got != "tail [scrubbed]\n" {
		t.Fatalf("last write %q", got)
	}
}

func TestWriterOneWritePerCall(t *testing.T) {
	var rec recorder
	w := NewWriter(&rec)
	w.Write([]byte("a 192.0.2.1\nb ::1\nc"))
	if len(rec.calls) != 1 || rec.calls[0] != "a [scrubbed]\nb [scrubbed]\n" {
		t.Fatalf("calls = %q", rec.calls)
	}
}

func TestWriterLongLine(t *testing.T) {
	var rec recorder
	w := NewWriter(&rec)
	long := strings.Repeat("x", maxPending) + " 192.0.2.1"
	w.Write([]byte(long))
	// Flushed up to the space; the address stays whole in the buffer.
	if got := rec.String(); got != strings.Repeat("x", maxPending)+" " {
		t.Fatalf("flushed %d bytes, want the text up to the space", len(got))
	}
	w.Write([]byte(":80 end\n"))
	if got := rec.calls[len(rec.calls)-1]; got != "[scrubbed] end\n" {
		t.Fatalf("rest = %q", got)
	}
	// Without any space the whole buffer goes.
	rec.calls = nil
	w.Write(bytes.Repeat([]byte("y"), maxPending+1))
	if got := rec.String(); len(got) != maxPending+1 {
		t.Fatalf("flushed %d bytes of a space-less line, want all", len(got))
	}
}

func TestWriterError(t *testing.T) {
	boom := errors.New("boom")
	rec := &recorder{err: boom}
	w := NewWriter(rec)
	if n, err := w.Write([]byte("partial")); n != 7 || err != nil {
		t.Fatalf("buffered Write = %d, %v", n, err)
	}
	if _, err := w.Write([]byte(" line\n")); !errors.Is(err, boom) {
		t.Fatalf("Write err = %v, want the underlying error", err)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var rec recorder
	w := NewWriter(&rec)
	const writers, lines = 16, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				// One Write per line, as slog does; the writer must keep
				// each one whole.
				fmt.Fprintf(w, "g=%d i=%d from 192.0.2.%d:%d ok\n", g, i, i%250, 1000+i)
			}
		})
	}
	wg.Wait()
	out := strings.Split(strings.TrimSuffix(rec.String(), "\n"), "\n")
	if len(out) != writers*lines {
		t.Fatalf("got %d lines, want %d", len(out), writers*lines)
	}
	line := regexp.MustCompile(`^g=\d+ i=\d+ from \[scrubbed\] ok$`)
	for _, l := range out {
		if !line.MatchString(l) {
			t.Fatalf("mangled line %q", l)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var safe, unsafe bytes.Buffer
	NewLogger(&safe, slog.LevelInfo, false).Info("connected", "peer", "192.0.2.9:443", "v6", "[2001:db8::2]:1")
	NewLogger(&unsafe, slog.LevelInfo, true).Info("connected", "peer", "192.0.2.9:443")
	line := regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=INFO msg=connected peer=\[scrubbed\] v6=\[scrubbed\]\n$`)
	if !line.MatchString(safe.String()) {
		t.Fatalf("safe logger wrote %q", safe.String())
	}
	if !strings.Contains(unsafe.String(), "peer=192.0.2.9:443") {
		t.Fatalf("unsafe logger wrote %q", unsafe.String())
	}
	// Values are scrubbed before quoting: a newline must not glue the
	// address to the "n" of its escape, whatever the value's type.
	var quoted bytes.Buffer
	NewLogger(&quoted, slog.LevelInfo, false).Info("dial\n10.9.8.7:443 failed",
		"err", errors.New("read udp\n10.9.8.7:443->[2001:db8::3]:9\ttimeout"),
		"addr", netip.MustParseAddrPort("192.0.2.10:80"),
		"list", []string{"192.0.2.11", "\t192.0.2.12"},
		slog.Group("g", "s", "\n203.0.113.5"))
	if got := quoted.String(); regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|db8`).MatchString(got) || strings.Count(got, Replacement) != 7 {
		t.Fatalf("quoted values not scrubbed: %q", got)
	}
	var filtered bytes.Buffer
	l := NewLogger(&filtered, slog.LevelWarn, false)
	l.Info("hidden")
	l.Warn("shown")
	if strings.Contains(filtered.String(), "hidden") || !strings.Contains(filtered.String(), "shown") {
		t.Fatalf("level filtering wrong: %q", filtered.String())
	}
}

// Separators an address may be embedded with: raw boundary characters and
// the escapes of quoted strings, after which the address is unambiguous...
var fuzzSeparators = []string{" ", "\t", "\n", "=", "(", ",", `"`, "/", "@",
	`\n`, `\t`, `\r`, `\x00`, `\u00a0`, `\\`}

// ... and percent-encoded characters and escapes ending in a hex digit,
// which may run into the address ("%20" "0.0.0.1" reads as "%" "200.0.0.1"):
// there the scrubbed part may differ, but the address must still vanish.
var fuzzPercentSeparators = []string{"%20", "%0A", "%3D", "%2F", "%26", "%5B", `\a`, `\b`, `\f`}

// fuzzForms returns the ways an address shows up in logs and URLs.
func fuzzForms(a netip.Addr, port uint16) []string {
	ap := netip.AddrPortFrom(a, port).String()
	forms := []string{a.String(), ap}
	if a.Is6() {
		enc := strings.ReplaceAll(a.String(), ":", "%3A")
		forms = append(forms, enc, "["+a.String()+"]", "%5B"+a.String()+"%5D",
			"%5B"+enc+"%5D%3A"+strconv.Itoa(int(port)))
	}
	return forms
}

// FuzzScrub embeds a generated address, in each of its forms, in arbitrary
// text with each separator on either side. The address must vanish whole,
// and the text around it must come out as if scrubbed on its own; through
// the logger, the address must not survive quoting.
func FuzzScrub(f *testing.F) {
	f.Add("from", uint32(0xc0000201), []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, "rest", uint16(443), uint8(0), uint8(0))
	f.Add("a:", uint32(0), []byte{10: 0xff, 11: 0xff, 12: 1, 15: 4}, ":b", uint16(0), uint8(9), uint8(10))
	f.Add("1.2.3.4", uint32(1), []byte{}, "::1", uint16(1), uint8(13), uint8(15))
	f.Add("x%3A", uint32(0xffffffff), []byte{0: 1, 15: 1}, "]:", uint16(65535), uint8(17), uint8(19))
	f.Add("err=\"dial", uint32(0x0a090807), []byte{0: 0xfe, 1: 0x80, 15: 1}, "\"", uint16(443), uint8(9), uint8(6))
	f.Fuzz(func(t *testing.T, pre string, ip4 uint32, ip6 []byte, post string, port uint16, sl, sr uint8) {
		_ = Scrub(pre + post) // must not panic on anything

		v4 := netip.AddrFrom4([4]byte{byte(ip4 >> 24), byte(ip4 >> 16), byte(ip4 >> 8), byte(ip4)})
		forms := fuzzForms(v4, port)
		if len(ip6) >= 16 {
			forms = append(forms, fuzzForms(netip.AddrFrom16([16]byte(ip6[:16])), port)...)
		}
		left := fuzzSeparators[int(sl)%len(fuzzSeparators)]
		right := fuzzSeparators[int(sr)%len(fuzzSeparators)]
		for _, a := range forms {
			got := Scrub(pre + left + a + right + post)
			want := Scrub(pre+left) + Replacement + Scrub(right+post)
			if got != want {
				t.Fatalf("address %q between %q+%q and %q+%q:\n got %q\nwant %q", a, pre, left, right, post, got, want)
			}
		}
		pleft := fuzzPercentSeparators[int(sl)%len(fuzzPercentSeparators)]
		pright := fuzzPercentSeparators[int(sr)%len(fuzzPercentSeparators)]
		for _, a := range forms {
			got := Scrub(pre + pleft + a + pright + post)
			for _, plain := range []string{v4.String(), strings.Trim(a, "[]")} {
				if strings.Count(got, plain) > strings.Count(pre, plain)+strings.Count(post, plain) {
					t.Fatalf("address %q between %q+%q and %q+%q survived: %q", a, pre, pleft, pright, post, got)
				}
			}
		}
		// Through the logger a raw newline or tab becomes an escape.
		var buf bytes.Buffer
		log := NewLogger(&buf, slog.LevelInfo, false)
		for _, raw := range []string{"\n", "\t", "\r", "\x00"} {
			buf.Reset()
			log.Info("m", "v", "x"+raw+v4.String()+raw+"y")
			if strings.Contains(buf.String(), v4.String()) {
				t.Fatalf("address %s survived quoting: %q", v4, buf.String())
			}
		}
	})
}

// scrubWhole is the plain form of appendScrubbed: the regexps run over the
// whole text. The windowed version must agree with it.
func scrubWhole(s string) string {
	b := []byte(s)
	var dst []byte
	re, pos := atStart, 0
	for pos <= len(b) {
		m := re.FindSubmatchIndex(b[pos:])
		if m == nil {
			break
		}
		dst = append(dst, b[pos:pos+m[2]]...)
		dst = append(dst, Replacement...)
		pos += m[3]
		re = later
	}
	return string(append(dst, b[pos:]...))
}

func FuzzScrubWindows(f *testing.F) {
	for _, s := range []string{"1.2.3.4,5.6.7.8", "[::1]:80:", "a1.2.3.4", "1.2.3.4:x", "x ::ffff:1.2.3.4.5", "%3A%3A1%3a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Scrub(s), scrubWhole(s); got != want {
			t.Fatalf("Scrub(%q) = %q, whole-text matching gives %q", s, got, want)
		}
	})
}

func BenchmarkScrub(b *testing.B) {
	line := "time=2026-01-02T15:04:05.000Z level=INFO msg=\"relay closed\" peer=192.0.2.1:443 bytes=12345\n"
	b.ReportAllocs()
	for b.Loop() {
		Scrub(line)
	}
}
