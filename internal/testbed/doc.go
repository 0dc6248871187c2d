// Package testbed builds a small private internet on one Linux machine for
// integration tests and demos: network namespaces joined by a bridge, real
// programs started inside them, and in-process helpers (a two-address STUN
// server for RFC 5780 NAT discovery, a hash-checking target service, a SOCKS5
// client that speaks the pluggable-transport argument convention, and torrc
// builders), and a user-space link shaper (Namespace.Shape, package
// shaper) that adds delay, jitter, loss and a rate limit where the kernel
// has no netem.
//
// Addresses come from TEST-NET-2 (198.51.100.0/24), which exists only inside
// the namespaces this package creates; nothing has a route out, so nothing
// started here can reach beyond the machine. Creating namespaces needs root.
//
// Everything started here has a Close or Stop method; callers register them
// with t.Cleanup (or defer them) so namespaces and processes go away even when
// a test fails.
package testbed
