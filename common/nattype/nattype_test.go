package nattype

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", Unknown, true},
		{"unknown", Unknown, true},
		{"restricted", Restricted, true},
		{"unrestricted", Unrestricted, true},
		// Matching is exact, like the reference brokers.
		{"Unknown", "", false},
		{"RESTRICTED", "", false},
		{" restricted", "", false},
		{"restricted\n", "", false},
		// Fork/2.14 NAT names are not accepted by 2.5.1 peers.
		{"open", "", false},
		{"moderate", "", false},
		{"strict", "", false},
		{"symmetric", "", false},
	} {
		got, err := Parse(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("Parse(%q) = (%q, %v)", tc.in, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v is not ErrInvalid", tc.in, err)
		}
	}
	if ErrInvalid.Error() != "invalid NAT type" {
		t.Errorf("error text %q", ErrInvalid)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("unrestricted")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err != nil {
			return
		}
		switch got {
		case Unknown, Restricted, Unrestricted:
		default:
			t.Fatalf("Parse(%q) = %q", s, got)
		}
		if again, err := Parse(got); err != nil || again != got {
			t.Fatalf("Parse not idempotent on %q", got)
		}
	})
}
