package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestTLSFlagsExclusive(t *testing.T) {
	for _, tt := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-disable-tls"}, true},
		{[]string{"-cert", "c", "-key", "k"}, true},
		{[]string{"-acme-hostnames", "a.example", "-acme-email", "x@example"}, true},
		{nil, false},
		{[]string{"-disable-tls", "-cert", "c", "-key", "k"}, false},
		{[]string{"-cert", "c"}, false},
		{[]string{"-disable-tls", "-acme-email", "x@example"}, false},
		{[]string{"-disable-tls", "extra"}, false},
	} {
		_, err := parseFlags(tt.args, io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("%v: %v", tt.args, err)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-version", "-disable-tls"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "snowfall-probetest ") {
		t.Fatalf("exit %d, %q", code, out.String())
	}
}
