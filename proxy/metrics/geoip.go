package metrics

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// GeoIP maps addresses to countries from Tor's geoip files (lines
// "LOW,HIGH,CC": decimal integers in the IPv4 file, IPv6 addresses in the
// IPv6 one).
type GeoIP struct {
	ranges []geoRange // sorted by low, not overlapping
}

type geoRange struct {
	low, high netip.Addr
	cc        string
}

// LoadGeoIP reads the IPv4 and IPv6 databases; an empty path is skipped.
func LoadGeoIP(v4path, v6path string) (*GeoIP, error) {
	g := &GeoIP{}
	for _, p := range []struct {
		path string
		v6   bool
	}{{v4path, false}, {v6path, true}} {
		if p.path == "" {
			continue
		}
		f, err := os.Open(p.path)
		if err != nil {
			return nil, err
		}
		err = g.read(f, p.v6)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.path, err)
		}
	}
	slices.SortFunc(g.ranges, func(a, b geoRange) int { return a.low.Compare(b.low) })
	return g, nil
}

func (g *GeoIP) read(r io.Reader, v6 bool) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		parts := strings.Split(s, ",")
		if len(parts) != 3 {
			return fmt.Errorf("line %d: want LOW,HIGH,CC", line)
		}
		lo, err1 := parseGeoAddr(parts[0], v6)
		hi, err2 := parseGeoAddr(parts[1], v6)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if hi.Less(lo) {
			return fmt.Errorf("line %d: range ends before it starts", line)
		}
		g.ranges = append(g.ranges, geoRange{lo, hi, strings.ToUpper(parts[2])})
	}
	return sc.Err()
}

func parseGeoAddr(s string, v6 bool) (netip.Addr, error) {
	if v6 {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return netip.Addr{}, fmt.Errorf("bad IPv6 address %q", s)
		}
		return a, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad IPv4 number %q", s)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return netip.AddrFrom4(b), nil
}

// Country returns the two-letter code for a, or "" when unknown.
func (g *GeoIP) Country(a netip.Addr) string {
	if g == nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	i, _ := slices.BinarySearchFunc(g.ranges, a, func(r geoRange, t netip.Addr) int {
		return r.low.Compare(t)
	})
	// i is the first range starting after a (or at a); the candidate is
	// the one at a, else the one before.
	for _, j := range []int{i, i - 1} {
		if j >= 0 && j < len(g.ranges) {
			r := g.ranges[j]
			if r.low.BitLen() == a.BitLen() && r.low.Compare(a) <= 0 && a.Compare(r.high) <= 0 {
				if r.cc == "??" {
					return ""
				}
				return r.cc
			}
		}
	}
	return ""
}
