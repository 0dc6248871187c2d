package bridgefingerprint

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	ed := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		in, want string // want "" = invalid
	}{
		{Default, Default},
		{strings.ToLower(Default), Default},
		{"2b280B23e1107bb62ABFC40DDCC8824814f80a72", Default},
		{"8838024498816A039FCBBAB14E6F40A0843051FA", "8838024498816A039FCBBAB14E6F40A0843051FA"},
		{ed, strings.ToUpper(ed)},
		{"", ""},
		{Default[:38], ""},
		{Default + "00", ""},
		{Default[:39], ""},
		{Default[:39] + "G", ""},
		{"$" + Default[1:], ""},
		{" " + Default, ""},
		{"0x" + Default[2:], ""},
		{ed + "00", ""},
		{ed[:62], ""},
		{strings.Repeat("00", 21), ""},
	} {
		fp, err := Parse(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) || fp != "" {
				t.Errorf("Parse(%q) = (%q, %v), want ErrInvalid", tc.in, fp, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if fp.String() != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, fp, tc.want)
		}
		if len(fp) != len(tc.want)/2 {
			t.Errorf("Parse(%q) holds %d bytes", tc.in, len(fp))
		}
	}
	if ErrInvalid.Error() != "bridge fingerprint invalid" {
		t.Errorf("error text %q", ErrInvalid)
	}
}

func TestFingerprintAsMapKey(t *testing.T) {
	upper, _ := Parse(Default)
	lower, _ := Parse(strings.ToLower(Default))
	other, _ := Parse("8838024498816A039FCBBAB14E6F40A0843051FA")
	bridges := map[Fingerprint]string{upper: "default"}
	if bridges[lower] != "default" {
		t.Error("case changes the key")
	}
	if _, ok := bridges[other]; ok {
		t.Error("different fingerprints share a key")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Default)
	f.Add(strings.Repeat("ab", 32))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := Parse(s)
		if err != nil {
			return
		}
		if len(fp) != 20 && len(fp) != 32 {
			t.Fatalf("Parse(%q) has %d bytes", s, len(fp))
		}
		if !strings.EqualFold(fp.String(), s) {
			t.Fatalf("Parse(%q).String() = %q", s, fp)
		}
		if again, err := Parse(fp.String()); err != nil || again != fp {
			t.Fatalf("round trip of %q: (%q, %v)", s, again, err)
		}
	})
}
