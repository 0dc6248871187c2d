// Package geoip maps IP addresses to country codes using the range files
// that tor ships (/usr/share/tor/geoip and geoip6). The broker and the
// proxy use it only to label their metrics by country.
//
// The IPv4 file has lines "FROM,TO,CC" where FROM and TO are the first and
// last address of a range written as decimal 32-bit integers; the IPv6 file
// has "FROM,TO,CC" with the addresses in their textual form. Lines starting
// with "#" and blank lines are ignored. Lookups are binary searches over the
// sorted ranges.
package geoip

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
)

// Unknown is the country code reported for addresses in no range.
const Unknown = "??"

// ErrFormat reports a malformed line in a geoip file.
var ErrFormat = errors.New("geoip: malformed line")

type v4Range struct {
	from, to uint32
	cc       [2]byte
}

type v6Range struct {
	from, to netip.Addr
	cc       [2]byte
}

// Table is a loaded pair of geoip files. It is immutable and safe for
// concurrent use; reloading builds a new Table.
type Table struct {
	v4 []v4Range
	v6 []v6Range
}

// Load reads the IPv4 file at path4 and the IPv6 file at path6. An empty path
// leaves that family empty.
func Load(path4, path6 string) (*Table, error) {
	t := &Table{}
	if path4 != "" {
		f, err := os.Open(path4)
		if err != nil {
			return nil, fmt.Errorf("geoip: %w", err)
		}
		t.v4, err = parse4(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path4, err)
		}
	}
	if path6 != "" {
		f, err := os.Open(path6)
		if err != nil {
			return nil, fmt.Errorf("geoip: %w", err)
		}
		t.v6, err = parse6(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path6, err)
		}
	}
	return t, nil
}

// Parse builds a Table from the contents of an IPv4 and an IPv6 file; either
// reader may be nil.
func Parse(r4, r6 io.Reader) (*Table, error) {
	t := &Table{}
	var err error
	if r4 != nil {
		if t.v4, err = parse4(r4); err != nil {
			return nil, err
		}
	}
	if r6 != nil {
		if t.v6, err = parse6(r6); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Len returns the number of IPv4 and IPv6 ranges.
func (t *Table) Len() (v4, v6 int) { return len(t.v4), len(t.v6) }

// Country returns the country code of addr, or Unknown and false when no
// range holds it. A nil Table knows no address.
func (t *Table) Country(addr netip.Addr) (string, bool) {
	if t == nil || !addr.IsValid() {
		return Unknown, false
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		a := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		// First range whose end is >= a.
		i, _ := slices.BinarySearchFunc(t.v4, a, func(r v4Range, a uint32) int {
			switch {
			case r.to < a:
				return -1
			case r.to > a:
				return 1
			}
			return 0
		})
		if i < len(t.v4) && t.v4[i].from <= a {
			return ccString(t.v4[i].cc)
		}
		return Unknown, false
	}
	i, _ := slices.BinarySearchFunc(t.v6, addr, func(r v6Range, a netip.Addr) int {
		return r.to.Compare(a)
	})
	if i < len(t.v6) && t.v6[i].from.Compare(addr) <= 0 {
		return ccString(t.v6[i].cc)
	}
	return Unknown, false
}

// ccString avoids allocating for the codes that occur.
func ccString(cc [2]byte) (string, bool) {
	if cc == [2]byte{'?', '?'} {
		return Unknown, false
	}
	return string(cc[:]), true
}

func parse4(r io.Reader) ([]v4Range, error) {
	var out []v4Range
	err := eachLine(r, func(from, to, cc []byte) error {
		f, err1 := strconv.ParseUint(string(from), 10, 32)
		t, err2 := strconv.ParseUint(string(to), 10, 32)
		if err1 != nil || err2 != nil || f > t {
			return ErrFormat
		}
		out = append(out, v4Range{from: uint32(f), to: uint32(t), cc: [2]byte{cc[0], cc[1]}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b v4Range) int {
		switch {
		case a.from < b.from:
			return -1
		case a.from > b.from:
			return 1
		}
		return 0
	})
	for i := 1; i < len(out); i++ {
		if out[i].from <= out[i-1].to {
			return nil, fmt.Errorf("%w: overlapping IPv4 ranges", ErrFormat)
		}
	}
	return out, nil
}

func parse6(r io.Reader) ([]v6Range, error) {
	var out []v6Range
	err := eachLine(r, func(from, to, cc []byte) error {
		f, err1 := netip.ParseAddr(string(from))
		t, err2 := netip.ParseAddr(string(to))
		if err1 != nil || err2 != nil || !f.Is6() || !t.Is6() || f.Zone() != "" || t.Zone() != "" || f.Compare(t) > 0 {
			return ErrFormat
		}
		out = append(out, v6Range{from: f, to: t, cc: [2]byte{cc[0], cc[1]}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b v6Range) int { return a.from.Compare(b.from) })
	for i := 1; i < len(out); i++ {
		if out[i].from.Compare(out[i-1].to) <= 0 {
			return nil, fmt.Errorf("%w: overlapping IPv6 ranges", ErrFormat)
		}
	}
	return out, nil
}

// eachLine calls fn with the three fields of every data line.
func eachLine(r io.Reader, fn func(from, to, cc []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		parts := bytes.Split(line, []byte{','})
		if len(parts) != 3 || !validCC(parts[2]) {
			return fmt.Errorf("%w %d", ErrFormat, n)
		}
		if err := fn(parts[0], parts[1], parts[2]); err != nil {
			return fmt.Errorf("%w %d", err, n)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("geoip: line %d: %w", n+1, err)
	}
	return nil
}

func validCC(cc []byte) bool {
	if len(cc) != 2 {
		return false
	}
	if cc[0] == '?' && cc[1] == '?' {
		return true
	}
	for _, c := range cc {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
