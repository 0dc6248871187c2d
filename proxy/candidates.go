package proxy

import (
	"net/netip"
	"strings"
)

// publicCandidatesOnly returns a client's offer without the candidates
// that this proxy must not send STUN to: every a=candidate line, of any
// type, is kept only if its address is a public IP address (isPublicAddr).
// A broker or client could otherwise aim the proxy's connectivity checks
// at its loopback or LAN. Names (mDNS or DNS) are dropped too: the proxy
// resolves no names for a peer. So that no WebRTC stack reads a different
// address than this check did, only lines in canonical form (single
// spaces, no empty fields) are kept. dropped counts the lines removed.
func publicCandidatesOnly(sdp string) (out string, dropped int) {
	var b strings.Builder
	for len(sdp) > 0 {
		line := sdp
		if i := strings.IndexByte(sdp, '\n'); i >= 0 {
			line = sdp[:i+1]
		}
		sdp = sdp[len(line):]
		content := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if rest, ok := strings.CutPrefix(content, "a=candidate:"); ok && !publicCandidate(rest) {
			dropped++
			continue
		}
		b.WriteString(line)
	}
	if dropped == 0 {
		return b.String(), 0
	}
	return b.String(), dropped
}

// publicCandidate reports whether the value of an a=candidate line (RFC
// 8839 §5.1: foundation component transport priority address port "typ"
// type ...) is canonical and names a public IP address.
func publicCandidate(v string) bool {
	f := strings.Split(v, " ")
	if len(f) < 8 || f[6] != "typ" {
		return false
	}
	for _, x := range f {
		if x == "" || strings.ContainsAny(x, "\t\v\f\r\x00") {
			return false
		}
	}
	addr, err := netip.ParseAddr(f[4])
	return err == nil && addr.Zone() == "" && isPublicAddr(addr)
}
