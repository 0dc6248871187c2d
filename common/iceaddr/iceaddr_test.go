package iceaddr

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
)

func TestIsLocalIsPublic(t *testing.T) {
	for _, tc := range []struct {
		addr          string
		local, public bool
	}{
		{"10.0.0.1", true, false},
		{"10.255.255.255", true, false},
		{"11.0.0.1", false, true},
		{"172.16.0.1", true, false},
		{"172.31.255.254", true, false},
		{"172.32.0.1", false, true},
		{"172.15.255.255", false, true},
		{"192.168.1.5", true, false},
		{"192.169.0.1", false, true},
		{"100.64.0.1", true, false},
		{"100.127.255.255", true, false},
		{"100.128.0.1", false, true},
		{"100.63.255.255", false, true},
		{"169.254.10.20", true, false},
		{"fc00::1", true, false},
		{"fd12:3456:789a::1", true, false},
		{"fe80::a00:27ff:fe4e:66a1", true, false}, // stricter than 2.5.1
		{"fe80::1%eth0", true, false},
		{"febf::1", true, false},
		{"fec0::1", false, true},
		{"::ffff:192.168.0.1", true, false},
		{"::ffff:203.0.113.7", false, true},
		{"127.0.0.1", false, false},
		{"127.8.9.10", false, false},
		{"::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.251", false, false},
		{"ff02::fb", false, false},
		{"203.0.113.7", false, true},
		{"198.51.100.20", false, true},
		{"8.8.8.8", false, true},
		{"2001:db8:85a3::8a2e:370:7334", false, true},
		{"2a00:1450:4001::1", false, true},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := IsLocal(a); got != tc.local {
			t.Errorf("IsLocal(%s) = %v", tc.addr, got)
		}
		if got := IsPublic(a); got != tc.public {
			t.Errorf("IsPublic(%s) = %v", tc.addr, got)
		}
	}
	if IsLocal(netip.Addr{}) || IsPublic(netip.Addr{}) {
		t.Error("zero Addr classified")
	}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStripLocalCandidatesFixture(t *testing.T) {
	offer := readFixture(t, "pion-offer.sdp")
	want := readFixture(t, "pion-offer.stripped.sdp")
	got := StripLocalCandidates(offer)
	if got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
	for _, keep := range []string{
		"abcd1234-5678-90ef-abcd-1234567890ab.local 60123 typ host", // mDNS
		"2001:db8:85a3::8a2e:370:7334 50017 typ host",               // public IPv6
		"203.0.113.7 40813 typ srflx raddr 192.168.1.5",             // srflx, even with a local raddr
		"198.51.100.20 3478 typ relay",
		"a=end-of-candidates\r\n",
		"c=IN IP4 0.0.0.0\r\n",
	} {
		if !strings.Contains(got, keep) {
			t.Errorf("lost %q", keep)
		}
	}
	if StripLocalCandidates(got) != got {
		t.Error("not idempotent")
	}
	checkNoLocalHost(t, got)
	if a, _ := ClientAddr(offer); a != netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334") {
		t.Errorf("client address %v", a)
	}
	if a, b := mustClientAddr(offer), mustClientAddr(got); a != b {
		t.Errorf("stripping changed the client address %v -> %v", a, b)
	}

	answer := readFixture(t, "pion-answer-loopback.sdp")
	got = StripLocalCandidates(answer)
	checkNoLocalHost(t, got)
	if n := strings.Count(got, "a=candidate:"); n != 1 || !strings.Contains(got, "192.0.2.44 37102 typ srflx raddr 0.0.0.0") {
		t.Fatalf("kept %d candidates:\n%s", n, got)
	}
	// Everything but the dropped lines is unchanged, in order.
	if strings.ReplaceAll(answer, "\r\n", "\n") == strings.ReplaceAll(got, "\r\n", "\n") {
		t.Fatal("nothing stripped")
	}
	var rest []string
	for _, l := range strings.SplitAfter(answer, "\r\n") {
		if !strings.Contains(l, "typ host") {
			rest = append(rest, l)
		}
	}
	if strings.Join(rest, "") != got {
		t.Fatalf("other lines changed:\n%q", got)
	}
}

func mustClientAddr(sdp string) netip.Addr {
	a, ok := ClientAddr(sdp)
	if !ok {
		panic("no client address")
	}
	return a
}

// checkNoLocalHost asserts, using pion's own candidate parser as an
// independent judge, that no local host candidate is left in sdp.
func checkNoLocalHost(t testing.TB, sdp string) {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimSuffix(l, "\r")
		v, ok := strings.CutPrefix(l, "a=")
		if !ok || !strings.HasPrefix(v, "candidate:") {
			continue
		}
		c, err := ice.UnmarshalCandidate(v)
		if err != nil || c.Type() != ice.CandidateTypeHost {
			continue
		}
		if a, err := netip.ParseAddr(c.Address()); err == nil && isStrippable(a) {
			t.Fatalf("local host candidate left: %q in %q", l, sdp)
		}
	}
}

func TestStripLocalCandidatesTable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"v=0\r\n", "v=0\r\n"},
		// LF-only line ends and a last line without terminator are kept.
		{"v=0\na=candidate:1 1 udp 1 10.1.2.3 9 typ host\nx=1", "v=0\nx=1"},
		{"a=candidate:1 1 udp 1 10.1.2.3 9 typ host", ""},
		{"a=candidate:1 1 udp 1 10.1.2.3 9 typ host\r\n", ""},
		// Type matching is case-insensitive.
		{"a=candidate:1 1 UDP 1 192.168.0.2 9 TYP HOST\r\nv=0\r\n", "v=0\r\n"},
		{"a=candidate:1 1 udp 1 ::ffff:10.0.0.1 9 typ host\r\n", ""},
		{"a=candidate:1 1 udp 1 fe80::1%wlan0 9 typ host\r\n", ""},
		// Zones as pion reads them: from the first "%" on, even empty or
		// on IPv4 (netip refuses both).
		{"a=candidate:1 1 udp 1 10.0.0.1% 9 typ host\r\n", ""},
		{"a=candidate:1 1 udp 1 fe80::1% 9 typ host\r\n", ""},
		{"a=candidate:1 1 udp 1 192.168.0.7%eth0 9 typ host\r\n", ""},
		{"a=candidate:1 1 udp 1 127.0.0.1%%x 9 typ host\r\n", ""},
		{"a=candidate:1 1 udp 1 203.0.113.9% 9 typ host\r\n", "a=candidate:1 1 udp 1 203.0.113.9% 9 typ host\r\n"},
		// Kept: srflx/prflx/relay, public, hostnames, malformed.
		{"a=candidate:1 1 udp 1 10.1.2.3 9 typ srflx raddr 10.1.2.3 rport 9\r\n", "a=candidate:1 1 udp 1 10.1.2.3 9 typ srflx raddr 10.1.2.3 rport 9\r\n"},
		{"a=candidate:1 1 udp 1 10.1.2.3 9 typ prflx\r\n", "a=candidate:1 1 udp 1 10.1.2.3 9 typ prflx\r\n"},
		{"a=candidate:1 1 udp 1 203.0.113.9 9 typ host\r\n", "a=candidate:1 1 udp 1 203.0.113.9 9 typ host\r\n"},
		{"a=candidate:1 1 udp 1 host.local 9 typ host\r\n", "a=candidate:1 1 udp 1 host.local 9 typ host\r\n"},
		{"a=candidate:1 1 udp 1 10.1.2.3 9 host\r\n", "a=candidate:1 1 udp 1 10.1.2.3 9 host\r\n"},
		{"a=candidate:1 1 udp 1 10.1.2.3\r\n", "a=candidate:1 1 udp 1 10.1.2.3\r\n"},
		// Not a candidate line.
		{"a=remote-candidates:1 10.1.2.3 9\r\n", "a=remote-candidates:1 10.1.2.3 9\r\n"},
	} {
		if got := StripLocalCandidates(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name, sdp, want string
	}{
		{"fixture: first public candidate, a host one", readFixture(t, "pion-offer.sdp"), "2001:db8:85a3::8a2e:370:7334"},
		{"fixture stripped", readFixture(t, "pion-offer.stripped.sdp"), "2001:db8:85a3::8a2e:370:7334"},
		{"loopback answer", readFixture(t, "pion-answer-loopback.sdp"), "192.0.2.44"},
		{"srflx after local host", "a=candidate:1 1 udp 1 192.168.1.5 9 typ host\r\na=candidate:2 1 udp 1 203.0.113.7 9 typ srflx raddr 192.168.1.5 rport 9\r\n", "203.0.113.7"},
		{"candidate wins over earlier c=", "c=IN IP4 198.51.100.1\r\na=candidate:2 1 udp 1 203.0.113.7 9 typ srflx\r\n", "203.0.113.7"},
		{"c= fallback", "c=IN IP4 0.0.0.0\r\nc=IN IP4 198.51.100.1/127\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n", "198.51.100.1"},
		{"c= IPv6", "c=IN IP6 2001:db8::7\n", "2001:db8::7"},
		{"empty zone", "a=candidate:1 1 udp 1 203.0.113.8% 9 typ host\r\n", "203.0.113.8"},
		{"mapped address unmapped", "a=candidate:1 1 udp 1 ::ffff:203.0.113.7 9 typ host\r\n", "203.0.113.7"},
		{"mDNS only", "a=candidate:1 1 udp 1 x.local 9 typ host\r\nc=IN IP4 0.0.0.0\r\n", ""},
		{"nothing public", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=candidate:1 1 udp 1 224.0.0.1 9 typ host\r\n", ""},
		{"empty", "", ""},
	} {
		a, ok := ClientAddr(tc.sdp)
		if tc.want == "" {
			if ok {
				t.Errorf("%s: got %v", tc.name, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: got (%v, %v), want %s", tc.name, a, ok, tc.want)
		}
	}
}

func TestHideRelatedAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"v=0\r\n", "v=0\r\n"},
		{"a=candidate:1 1 udp 1 203.0.113.7 40813 typ srflx raddr 192.168.1.5 rport 52945\r\n",
			"a=candidate:1 1 udp 1 203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 0\r\n"},
		{"a=candidate:1 1 udp 1 198.51.100.20 3478 typ relay raddr 203.0.113.7 rport 40813 generation 0\n",
			"a=candidate:1 1 udp 1 198.51.100.20 3478 typ relay raddr 0.0.0.0 rport 0 generation 0\n"},
		{"a=candidate:1 1 udp 1 2001:db8::1 9 typ prflx raddr fe80::1%eth0 rport 9",
			"a=candidate:1 1 udp 1 2001:db8::1 9 typ prflx raddr 0.0.0.0 rport 0"},
		// Any case and runs of whitespace; only values after "typ".
		{"a=candidate:1 1 udp 1 203.0.113.7 9 TYP srflx  RADDR\t10.0.0.1  Rport 7\r\n",
			"a=candidate:1 1 udp 1 203.0.113.7 9 TYP srflx  RADDR\t0.0.0.0  Rport 0\r\n"},
		{"a=candidate:raddr 1 udp 1 203.0.113.7 9 typ srflx raddr 10.0.0.1 rport 7",
			"a=candidate:raddr 1 udp 1 203.0.113.7 9 typ srflx raddr 0.0.0.0 rport 0"},
		// Already hidden: the same string comes back.
		{"a=candidate:1 1 udp 1 192.0.2.44 37102 typ srflx raddr 0.0.0.0 rport 0\r\n",
			"a=candidate:1 1 udp 1 192.0.2.44 37102 typ srflx raddr 0.0.0.0 rport 0\r\n"},
		// A dangling raddr, and lines that are not candidates.
		{"a=candidate:1 1 udp 1 203.0.113.7 9 typ srflx raddr", "a=candidate:1 1 udp 1 203.0.113.7 9 typ srflx raddr"},
		{"a=x typ srflx raddr 10.0.0.1 rport 7\r\n", "a=x typ srflx raddr 10.0.0.1 rport 7\r\n"},
	} {
		if got := HideRelatedAddresses(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactFixture(t *testing.T) {
	offer := readFixture(t, "pion-offer.sdp")
	for _, keepLocal := range []bool{false, true} {
		got := Redact(offer, keepLocal)
		checkNoRelated(t, got)
		if strings.Contains(got, "raddr 192.168.1.5") || strings.Contains(got, "rport 52945") {
			t.Errorf("keepLocal=%v: LAN address left in\n%s", keepLocal, got)
		}
		if !strings.Contains(got, "203.0.113.7 40813 typ srflx raddr 0.0.0.0 rport 0") ||
			!strings.Contains(got, "198.51.100.20 3478 typ relay raddr 0.0.0.0 rport 0") {
			t.Errorf("keepLocal=%v: candidates not rewritten:\n%s", keepLocal, got)
		}
		if keepLocal != strings.Contains(got, "192.168.1.5 ") {
			t.Errorf("keepLocal=%v: local host candidates wrong:\n%s", keepLocal, got)
		}
	}
	if got := Redact(offer, false); got != HideRelatedAddresses(readFixture(t, "pion-offer.stripped.sdp")) {
		t.Errorf("Redact differs from stripping then hiding:\n%s", got)
	}
}

// checkNoRelated asserts, with pion's parser as judge, that no candidate in
// sdp carries a related address other than 0.0.0.0 0 (pion reports an
// empty one for a candidate without raddr).
func checkNoRelated(t testing.TB, sdp string) {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSuffix(l, "\r"), "a=")
		if !ok || !strings.HasPrefix(v, "candidate:") {
			continue
		}
		c, err := ice.UnmarshalCandidate(v)
		if err != nil || c.RelatedAddress() == nil {
			continue
		}
		if ra := c.RelatedAddress(); (ra.Address != hiddenAddr && ra.Address != "") || ra.Port != 0 {
			t.Fatalf("related address %s %d left in %q", ra.Address, ra.Port, l)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, name := range []string{"pion-offer.sdp", "pion-answer-loopback.sdp"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), false)
	}
	f.Add("a=candidate:1 1 udp 1 203.0.113.7 9 typ srflx raddr 10.0.0.1 rport 7\r\n", true)
	f.Add("a=candidate:1 1 udp 1 10.0.0.1% 9 typ host\r\n", false)
	f.Fuzz(func(t *testing.T, sdp string, keepLocal bool) {
		out := Redact(sdp, keepLocal)
		checkNoRelated(t, out)
		if !keepLocal {
			checkNoLocalHost(t, out)
		}
		if Redact(out, keepLocal) != out {
			t.Fatal("not idempotent")
		}
		if strings.Count(out, "\n") > strings.Count(sdp, "\n") {
			t.Fatal("lines appeared")
		}
	})
}

func TestHasCandidate(t *testing.T) {
	for _, tc := range []struct {
		sdp  string
		want bool
	}{
		{readFixture(t, "pion-offer.sdp"), true},
		{"v=0\r\na=candidate:1 1 udp 1 x.local 9 typ host\r\n", true},
		{"v=0\r\na=end-of-candidates\r\n", false},
		{"v=0\r\nx=a=candidate:1\r\n", false},
		{"", false},
	} {
		if got := HasCandidate(tc.sdp); got != tc.want {
			t.Errorf("%q: %v", tc.sdp, got)
		}
	}
}

func FuzzStripLocalCandidates(f *testing.F) {
	for _, name := range []string{"pion-offer.sdp", "pion-answer-loopback.sdp"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("a=candidate:1 1 udp 1 10.1.2.3 9 typ host")
	f.Add("a=candidate:1 1 udp 1 fe80::1%eth0 9 typ host\r\nc=IN IP6 ::1\r\n")
	f.Add("a=candidate:1 1 udp 1 10.0.0.1% 9 typ host\r\n")
	f.Fuzz(func(t *testing.T, sdp string) {
		out := StripLocalCandidates(sdp)
		checkNoLocalHost(t, out)
		if len(out) > len(sdp) {
			t.Fatal("output grew")
		}
		if StripLocalCandidates(out) != out {
			t.Fatal("not idempotent")
		}
		// The output is the input minus whole lines.
		var b strings.Builder
		rest := out
		lines(sdp, func(line, _ string) bool {
			if strings.HasPrefix(rest, line) {
				rest = rest[len(line):]
				b.WriteString(line)
			}
			return true
		})
		if b.String() != out {
			t.Fatalf("output is not a subsequence of input lines: %q -> %q", sdp, out)
		}
		if HasCandidate(out) && !HasCandidate(sdp) {
			t.Fatal("candidate appeared")
		}
	})
}

func FuzzClientAddr(f *testing.F) {
	f.Add("a=candidate:1 1 udp 1 203.0.113.7 9 typ srflx\r\n")
	f.Add("c=IN IP4 198.51.100.1/127\r\n")
	f.Add("c=IN IP6 ::ffff:1.2.3.4\r\n")
	f.Fuzz(func(t *testing.T, sdp string) {
		a, ok := ClientAddr(sdp)
		if ok != a.IsValid() || ok && (!IsPublic(a) || a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("ClientAddr(%q) = (%v, %v)", sdp, a, ok)
		}
	})
}

// BenchmarkRedact measures the per-offer cost of preparing an SDP to send:
// one copy when something changes, none otherwise.
func BenchmarkRedact(b *testing.B) {
	offer, err := os.ReadFile("testdata/pion-offer.sdp")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sdp  string
	}{{"offer", string(offer)}, {"clean", Redact(string(offer), false)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Redact(tc.sdp, false)
			}
		})
	}
}
