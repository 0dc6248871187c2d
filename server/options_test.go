package server

import (
	"net/netip"
	"strings"
	"testing"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    pt.Args
		wantN   int
		wantSrc string // "" for none
		wantErr string // substring; "" for success
	}{
		{"empty", pt.Args{}, 1, "", ""},
		{"nil", nil, 1, "", ""},
		{"unknown ignored", pt.Args{"foo": {"bar"}}, 1, "", ""},
		{"num", pt.Args{"num-turbotunnel": {"4"}}, 4, "", ""},
		{"num max", pt.Args{"num-turbotunnel": {"1024"}}, 1024, "", ""},
		{"num zero", pt.Args{"num-turbotunnel": {"0"}}, 0, "", "num-turbotunnel"},
		{"num negative", pt.Args{"num-turbotunnel": {"-1"}}, 0, "", "num-turbotunnel"},
		{"num too big", pt.Args{"num-turbotunnel": {"1025"}}, 0, "", "num-turbotunnel"},
		{"num garbage", pt.Args{"num-turbotunnel": {"two"}}, 0, "", "num-turbotunnel"},
		{"num empty", pt.Args{"num-turbotunnel": {""}}, 0, "", "num-turbotunnel"},
		{"src ip", pt.Args{"orport-srcaddr": {"127.0.0.2"}}, 1, "127.0.0.2/32", ""},
		{"src cidr", pt.Args{"orport-srcaddr": {"127.0.0.0/24"}}, 1, "127.0.0.0/24", ""},
		{"src cidr host bits", pt.Args{"orport-srcaddr": {"127.0.0.9/24"}}, 1, "127.0.0.0/24", ""},
		{"src v6", pt.Args{"orport-srcaddr": {"2001:db8::/64"}}, 1, "2001:db8::/64", ""},
		{"src v6 ip", pt.Args{"orport-srcaddr": {"::1"}}, 1, "::1/128", ""},
		{"src garbage", pt.Args{"orport-srcaddr": {"localhost"}}, 0, "", "orport-srcaddr"},
		{"src bad bits", pt.Args{"orport-srcaddr": {"127.0.0.0/33"}}, 0, "", "orport-srcaddr"},
		{"src empty", pt.Args{"orport-srcaddr": {""}}, 0, "", "orport-srcaddr"},
		{"src non-ascii", pt.Args{"orport-srcaddr": {"é"}}, 0, "", "orport-srcaddr"},
		{"both", pt.Args{"num-turbotunnel": {"2"}, "orport-srcaddr": {"10.1.0.0/16"}}, 2, "10.1.0.0/16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := ParseOptions(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				// The message goes into an SMETHOD-ERROR line, which
				// must be printable ASCII.
				for _, r := range err.Error() {
					if r < 0x20 || r > 0x7e {
						t.Fatalf("error %q holds %q, not allowed on a PT line", err, r)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.NumTurbotunnel != tt.wantN {
				t.Errorf("NumTurbotunnel = %d, want %d", opts.NumTurbotunnel, tt.wantN)
			}
			got := ""
			if opts.ORPortSrcAddr.IsValid() {
				got = opts.ORPortSrcAddr.String()
			}
			if got != tt.wantSrc {
				t.Errorf("ORPortSrcAddr = %q, want %q", got, tt.wantSrc)
			}
		})
	}
}

func FuzzParseSrcAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8", "::/0", "2001:db8::/48", "1.2.3.4/0", "x/1", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSrcAddr(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("ParseSrcAddr(%q) = %v, not a valid masked prefix", s, p)
		}
		if a := RandomAddr(p); !p.Contains(a) {
			t.Fatalf("RandomAddr(%v) = %v, outside the range", p, a)
		}
	})
}

func FuzzParseNumTurbotunnel(f *testing.F) {
	for _, s := range []string{"1", "0", "1024", "1025", "-3", "+2", "0x10", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseNumTurbotunnel(s)
		if err == nil && (n < 1 || n > MaxNumTurbotunnel) {
			t.Fatalf("parseNumTurbotunnel(%q) = %d, out of range", s, n)
		}
	})
}

func TestRandomAddr(t *testing.T) {
	tests := []struct {
		prefix   string
		distinct int // at least this many distinct addresses in 200 draws
	}{
		{"127.0.0.5/32", 1},
		{"127.0.0.4/31", 2},
		{"127.0.0.0/24", 50},
		{"127.1.0.0/13", 100},
		{"0.0.0.0/0", 100},
		{"::1/128", 1},
		{"2001:db8::/64", 100},
		{"2001:db8:0:1::/127", 2},
		{"::/0", 100},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.prefix)
		seen := make(map[netip.Addr]bool)
		for range 200 {
			a := RandomAddr(p)
			if !p.Contains(a) {
				t.Fatalf("RandomAddr(%v) = %v, outside the range", p, a)
			}
			seen[a] = true
		}
		if len(seen) < tt.distinct {
			t.Errorf("RandomAddr(%v): %d distinct addresses in 200 draws, want at least %d", p, len(seen), tt.distinct)
		}
	}
}

func BenchmarkRandomAddr(b *testing.B) {
	p := netip.MustParsePrefix("2001:db8::/64")
	b.ReportAllocs()
	for b.Loop() {
		RandomAddr(p)
	}
}
