package gctune

import "testing"

func TestParseMemoryMax(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},
		{"", 0, false},
		{"0\n", 0, false},
		{"-1", 0, false},
	} {
		got, ok := parseMemoryMax(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMemoryMax(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
