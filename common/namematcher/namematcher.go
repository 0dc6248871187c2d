// Package namematcher implements the relay hostname patterns that proxies
// advertise and brokers check (PROTOCOL.md §1.4).
//
// A pattern is a domain suffix, optionally anchored at the start with "^"
// (exact match) and optionally ended with "$" (which changes nothing). Unlike
// the reference, membership here requires a label boundary: the pattern
// "example.net$" matches "example.net" and "a.example.net" but not
// "evilexample.net".
package namematcher

import "strings"

// Matcher is a parsed pattern.
type Matcher struct {
	exact  bool
	suffix string
}

// New parses a pattern. The empty pattern matches every name. Case is
// ignored, and so is a trailing dot of an absolute name ("example.net.$").
func New(pattern string) Matcher {
	m := Matcher{}
	if strings.HasPrefix(pattern, "^") {
		m.exact = true
		pattern = pattern[1:]
	}
	// A trailing dot (an absolute name) is dropped as IsMember drops it
	// from hostnames; otherwise such a pattern could match nothing.
	pattern = strings.TrimSuffix(strings.TrimSuffix(pattern, "$"), ".")
	m.suffix = strings.ToLower(pattern)
	return m
}

// Exact reports whether the pattern was anchored with "^".
func (m Matcher) Exact() bool { return m.exact }

// Suffix returns the pattern's domain part, without anchors.
func (m Matcher) Suffix() string { return m.suffix }

// IsMember reports whether hostname matches the pattern: equal for an exact
// pattern, otherwise equal to the suffix or ending in "." + suffix.
func (m Matcher) IsMember(hostname string) bool {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	if m.exact {
		return hostname == m.suffix
	}
	if m.suffix == "" {
		return true
	}
	if hostname == m.suffix {
		return true
	}
	s := m.suffix
	if !strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return strings.HasSuffix(hostname, s)
}

// IsSupersetOf reports whether every name other matches also matches m, as the
// broker requires of a proxy's declared pattern (m) against its own (other):
// a proxy that accepts at least the broker's relays may be given them.
func (m Matcher) IsSupersetOf(other Matcher) bool {
	if m.exact {
		return other.exact && m.suffix == other.suffix
	}
	if m.suffix == "" {
		return true
	}
	if other.suffix == m.suffix {
		return true
	}
	return strings.HasSuffix(other.suffix, "."+strings.TrimPrefix(m.suffix, "."))
}
