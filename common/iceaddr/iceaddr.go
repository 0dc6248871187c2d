// Package iceaddr classifies addresses the way Snowflake peers do and
// filters ICE candidates in SDP: stripping local host candidates before an
// offer or answer leaves the machine, and finding a client's public address
// in its offer (PROTOCOL.md §1.2, §5.2, §7.2).
package iceaddr

import "net/netip"

// IsLocal reports whether addr is in a private, CGNAT, link-local or
// unique-local range (loopback and unspecified are tested separately by
// callers with IsLoopback/IsUnspecified).
func IsLocal(addr netip.Addr) bool { panic("TODO") }

// IsPublic reports whether addr is none of local, loopback, unspecified or
// multicast.
func IsPublic(addr netip.Addr) bool { panic("TODO") }

// StripLocalCandidates returns sdp without the host candidates whose address
// is local, loopback or unspecified. Server-reflexive and relay candidates
// and non-IP (mDNS) candidates are kept. Other lines are kept byte for byte.
func StripLocalCandidates(sdp string) string { panic("TODO") }

// ClientAddr returns the first public candidate address in sdp, falling back
// to a public "c=" connection address; ok is false when there is none.
func ClientAddr(sdp string) (addr netip.Addr, ok bool) { panic("TODO") }

// HasCandidate reports whether sdp contains at least one a=candidate line.
func HasCandidate(sdp string) bool { panic("TODO") }
