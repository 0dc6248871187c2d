package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPublicCandidatesOnly(t *testing.T) {
	head := "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
	keep := []string{
		"a=candidate:1 1 udp 2130706431 203.0.113.9 5000 typ host\r\n",
		"a=candidate:2 1 udp 1694498815 198.51.100.7 6000 typ srflx raddr 10.0.0.5 rport 5000\r\n",
		"a=candidate:3 1 udp 16777215 2001:db8::5 3478 typ relay raddr 0.0.0.0 rport 0\r\n",
	}
	drop := []string{
		"a=candidate:4 1 udp 2130706431 10.0.0.5 5000 typ host\r\n",
		"a=candidate:5 1 udp 1694498815 127.0.0.1 6000 typ srflx raddr 0.0.0.0 rport 0\r\n",
		"a=candidate:6 1 udp 16777215 192.168.1.1 3478 typ relay raddr 0.0.0.0 rport 0\r\n",
		"a=candidate:7 1 udp 1 ::1 9 typ prflx\r\n",
		"a=candidate:8 1 udp 1 fe80::1%eth0 9 typ host\r\n",
		"a=candidate:9 1 udp 1 10.0.0.1% 9 typ host\r\n",
		"a=candidate:10 1 udp 1 100.64.0.1 9 typ srflx\r\n",
		"a=candidate:11 1 udp 1 0.0.0.0 9 typ host\r\n",
		"a=candidate:12 1 udp 1 ::ffff:10.0.0.1 9 typ host\r\n",
		"a=candidate:13 1 udp 1 6f0c.local 9 typ host\r\n",
		"a=candidate:14 1 udp 1 relay.example 9 typ relay\r\n",
		"a=candidate:15 1 udp 1  10.0.0.1 9 typ host\r\n", // pion reads an empty field here
		"a=candidate:16 1 udp 1 203.0.113.1\t9 typ host\r\n",
		"a=candidate:17 1 udp 1 203.0.113.1 9 typ\r\n",
		"a=candidate:18 1 udp 1 224.0.0.1 9 typ host\r\n",
	}
	sdp := head + strings.Join(keep, "") + strings.Join(drop, "") + "a=end-of-candidates\r\n"
	got, n := publicCandidatesOnly(sdp)
	if want := head + strings.Join(keep, "") + "a=end-of-candidates\r\n"; got != want || n != len(drop) {
		t.Errorf("got (%d dropped)\n%q\nwant (%d)\n%q", n, got, len(drop), want)
	}
	if got, n := publicCandidatesOnly(head); got != head || n != 0 {
		t.Errorf("an offer without candidates changed: %q", got)
	}
}

// FuzzPublicCandidatesOnly checks on any offer that what is kept is a
// subset of the lines and that no kept candidate has a non-public IP in
// any field before "typ".
func FuzzPublicCandidatesOnly(f *testing.F) {
	f.Add("a=candidate:1 1 udp 1 203.0.113.9 5000 typ host\r\na=candidate:2 1 udp 1 10.0.0.1 9 typ srflx\r\n")
	f.Add("a=candidate:1 1 udp 1  10.0.0.1 9 typ host\n")
	f.Add("a=candidate:x y z w ::1 1 typ relay raddr 1.2.3.4 rport 5\r\nv=0")
	f.Fuzz(func(t *testing.T, sdp string) {
		out, _ := publicCandidatesOnly(sdp)
		if len(out) > len(sdp) {
			t.Fatalf("output longer than input")
		}
		for _, line := range strings.SplitAfter(out, "\n") {
			if !strings.Contains(sdp, line) {
				t.Fatalf("line %q not in the input", line)
			}
			rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:")
			if !ok {
				continue
			}
			for _, field := range strings.Fields(rest) {
				if field == "typ" {
					break
				}
				if a, err := netip.ParseAddr(field); err == nil && !isPublicAddr(a) {
					t.Fatalf("kept %q with %s", line, a)
				}
			}
		}
	})
}
