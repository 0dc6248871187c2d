package amp

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodePath(t *testing.T) {
	for _, tc := range []struct {
		path, want, err string
	}{
		{path: "", err: "missing format indicator"},
		{path: "0", err: "missing data"},
		{path: "0cachebreaker", err: "missing data"},
		{path: "1abc/YWJj", err: "unknown format indicator '1'"},
		{path: "/0/YWJj", err: "unknown format indicator '/'"},
		{path: "0/YWJj=", err: "illegal base64 data at input byte 4"},
		{path: "0/YW+j", err: "illegal base64 data at input byte 2"},
		{path: "0/", want: ""},
		{path: "0cachebreaker/", want: ""},
		{path: "0/YWJj", want: "abc"},
		{path: "0///YWJj", want: "abc"},
		{path: "0cachebreaker/YWJj", want: "abc"},
		{path: "0/cache/breaker/YWJj", want: "abc"},
		{path: "0AAAAAAAAAAAA/_-8", want: "\xff\xef"},
	} {
		got, err := DecodePath(tc.path)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: got (%q, %v), want error %q", tc.path, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: got (%q, %v), want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestEncodePath(t *testing.T) {
	seen := map[string]bool{}
	for _, data := range []string{"", "\x00", "/", "hello world", "1.0\n{\"offer\":\"{}\",\"nat\":\"unknown\"}", strings.Repeat("\xff", 1000)} {
		p := EncodePath([]byte(data))
		breaker, payload, ok := strings.Cut(p, "/")
		if !ok || len(breaker) != 13 || breaker[0] != '0' {
			t.Fatalf("%q: bad layout %q", data, p)
		}
		if _, err := base64.RawURLEncoding.DecodeString(breaker[1:]); err != nil {
			t.Fatalf("%q: cache breaker %q is not base64url", data, breaker)
		}
		if payload != base64.RawURLEncoding.EncodeToString([]byte(data)) {
			t.Fatalf("%q: payload %q", data, payload)
		}
		if seen[breaker] {
			t.Fatalf("cache breaker %q repeated", breaker)
		}
		seen[breaker] = true
		got, err := DecodePath(p)
		if err != nil || !bytes.Equal(got, []byte(data)) {
			t.Fatalf("%q: round trip (%q, %v)", data, got, err)
		}
	}
}

func FuzzDecodePath(f *testing.F) {
	f.Add("0cachebreaker/YWJj")
	f.Add("0/")
	f.Add("/0/YWJj")
	f.Add(EncodePath([]byte("1.0\n{\"offer\":\"x\"}")))
	f.Fuzz(func(t *testing.T, path string) {
		data, err := DecodePath(path)
		if err != nil {
			return
		}
		if path[0] != '0' || !strings.Contains(path, "/") {
			t.Fatalf("accepted %q", path)
		}
		again, err := DecodePath(EncodePath(data))
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip of %q: (%q, %v)", data, again, err)
		}
	})
}
