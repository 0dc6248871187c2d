package geoip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const test4 = `# comment
16777216,16777471,AU

16777472,16778239,CN
3232235520,3232235775,??
4294967040,4294967295,ZZ
`

const test6 = `# comment
2001::,2001:0:ffff:ffff:ffff:ffff:ffff:ffff,??
2001:4:112::,2001:4:112:ffff:ffff:ffff:ffff:ffff,US
2a00::,2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff,DE
`

func TestLookup(t *testing.T) {
	tab, err := Parse(strings.NewReader(test4), strings.NewReader(test6))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		cc   string
		ok   bool
	}{
		{"1.0.0.0", "AU", true},
		{"1.0.0.255", "AU", true},
		{"1.0.1.0", "CN", true},
		{"1.0.3.255", "CN", true},
		{"1.0.4.0", "??", false},
		{"0.0.0.1", "??", false},
		{"192.168.0.7", "??", false}, // explicit ?? range
		{"255.255.255.255", "ZZ", true},
		{"::ffff:1.0.0.1", "AU", true}, // mapped addresses use the v4 table
		{"2001::1", "??", false},
		{"2001:4:112::", "US", true},
		{"2001:4:112:ffff:ffff:ffff:ffff:ffff", "US", true},
		{"2001:4:113::", "??", false},
		{"2a00:1::5", "DE", true},
		{"::1", "??", false},
	} {
		cc, ok := tab.Country(netip.MustParseAddr(tc.addr))
		if cc != tc.cc || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.addr, cc, ok, tc.cc, tc.ok)
		}
	}
	var nilTable *Table
	if cc, ok := nilTable.Country(netip.MustParseAddr("1.0.0.0")); cc != Unknown || ok {
		t.Errorf("nil table: %q %v", cc, ok)
	}
	if cc, ok := tab.Country(netip.Addr{}); cc != Unknown || ok {
		t.Errorf("invalid addr: %q %v", cc, ok)
	}
}

func TestBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, v4, v6 string }{
		{"two fields", "1,2\n", ""},
		{"four fields", "1,2,AU,x\n", ""},
		{"not a number", "a,2,AU\n", ""},
		{"too large", "1,4294967296,AU\n", ""},
		{"reversed", "5,2,AU\n", ""},
		{"long cc", "1,2,AUS\n", ""},
		{"bad cc", "1,2,A-\n", ""},
		{"overlap", "1,10,AU\n10,20,CN\n", ""},
		{"v4 in v6 file", "", "1.2.3.4,1.2.3.5,AU\n"},
		{"v6 reversed", "", "2001::5,2001::1,AU\n"},
		{"v6 garbage", "", "zz,2001::1,AU\n"},
		{"v6 overlap", "", "2001::,2001::10,AU\n2001::5,2001::20,US\n"},
		{"long line", strings.Repeat("1", 5000) + ",2,AU\n", ""},
	} {
		_, err := Parse(strings.NewReader(tc.v4), strings.NewReader(tc.v6))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
		if tc.name != "long line" && !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error %v is not ErrFormat", tc.name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(test4, test6)
	f.Add("1,2,AU\n", "::,::1,US\n")
	f.Add("", "")
	f.Add("#\n\n 3,4,??\n", "2001::,2001::,DE")
	f.Fuzz(func(t *testing.T, s4, s6 string) {
		tab, err := Parse(strings.NewReader(s4), strings.NewReader(s6))
		if err != nil {
			return
		}
		// Every range endpoint must find its own country.
		for _, r := range tab.v4 {
			a := netip.AddrFrom4([4]byte{byte(r.from >> 24), byte(r.from >> 16), byte(r.from >> 8), byte(r.from)})
			if cc, _ := tab.Country(a); cc != string(r.cc[:]) {
				t.Fatalf("%v: %s != %s", a, cc, r.cc)
			}
		}
		for _, r := range tab.v6 {
			if cc, _ := tab.Country(r.to); cc != string(r.cc[:]) {
				t.Fatalf("%v: %s != %s", r.to, cc, r.cc)
			}
		}
	})
}

func BenchmarkCountry(b *testing.B) {
	tab, err := Load("/usr/share/tor/geoip", "/usr/share/tor/geoip6")
	if err != nil {
		b.Fatal(err)
	}
	a := netip.MustParseAddr("81.2.69.160")
	b.ReportAllocs()
	for b.Loop() {
		tab.Country(a)
	}
}
