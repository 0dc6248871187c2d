// Package nattype names the NAT behaviours that clients and proxies report to
// the broker (PROTOCOL.md §3.2, §3.5, §9).
package nattype

import "fmt"

// The values carried in the "nat" and "NAT" message fields.
const (
	Unknown      = "unknown"
	Restricted   = "restricted"
	Unrestricted = "unrestricted"
)

// ErrInvalid reports a NAT type that is none of the known values.
var ErrInvalid = fmt.Errorf("invalid NAT type")

// Parse validates s, mapping the empty string to Unknown as peers do.
func Parse(s string) (string, error) {
	switch s {
	case "", Unknown:
		return Unknown, nil
	case Restricted, Unrestricted:
		return s, nil
	}
	return "", ErrInvalid
}
