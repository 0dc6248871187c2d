package bridgelist

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
)

const fp2 = "8838024498816A039FCBBAB14E6F40A0843051FA"

const good = `{"displayName":"default", "webSocketAddress":"wss://snowflake.torproject.net/", "fingerprint":"2B280B23E1107BB62ABFC40DDCC8824814F80A72"}

{"displayName":"flakey2","webSocketAddress":"wss://02.snowflake.torproject.net","fingerprint":"` + fp2 + `"}
`

func TestParse(t *testing.T) {
	l, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Bridges()); n != 2 {
		t.Fatalf("%d bridges", n)
	}
	fp, _ := bridgefingerprint.Parse(strings.ToLower(fp2))
	b, ok := l.Lookup(fp)
	if !ok || b.WebSocketAddress != "wss://02.snowflake.torproject.net" || b.Host != "02.snowflake.torproject.net" || b.DisplayName != "flakey2" {
		t.Fatalf("lookup: %+v %v", b, ok)
	}
	other, _ := bridgefingerprint.Parse(strings.Repeat("00", 20))
	if _, ok := l.Lookup(other); ok {
		t.Error("unknown fingerprint found")
	}
}

func TestDefault(t *testing.T) {
	l := Default()
	fp, _ := bridgefingerprint.Parse(bridgefingerprint.Default)
	b, ok := l.Lookup(fp)
	if !ok || b.WebSocketAddress != DefaultWebSocketAddress || b.DisplayName != "default" {
		t.Fatalf("%+v %v", b, ok)
	}
}

func TestBadLists(t *testing.T) {
	ok := `{"displayName":"a","webSocketAddress":"wss://a.example/","fingerprint":"` + fp2 + `"}` + "\n"
	for _, tc := range []struct{ name, text string }{
		{"empty", ""},
		{"blank only", "\n\n"},
		{"unknown key", `{"displayName":"a","webSocketAddress":"wss://a.example/","fingerprint":"` + fp2 + `","extra":1}`},
		{"bad line after good", ok + "{not json}\n"},
		{"bad fingerprint", `{"displayName":"a","webSocketAddress":"wss://a.example/","fingerprint":"1234"}`},
		{"missing fingerprint", `{"displayName":"a","webSocketAddress":"wss://a.example/"}`},
		{"missing address", `{"displayName":"a","fingerprint":"` + fp2 + `"}`},
		{"http address", `{"displayName":"a","webSocketAddress":"https://a.example/","fingerprint":"` + fp2 + `"}`},
		{"duplicate", ok + ok},
		{"two objects on a line", strings.TrimSpace(ok) + " " + ok},
		{"array", `[1]`},
		{"long line", `{"displayName":"` + strings.Repeat("x", maxLine) + `"}`},
	} {
		if _, err := Parse(strings.NewReader(tc.text)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bridges.jsonl")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Load(p)
	if err != nil || len(l.Bridges()) != 2 {
		t.Fatalf("%v", err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Fatal("missing file loaded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add(`{"displayName":"a","webSocketAddress":"ws://[::1]:8080/","fingerprint":"` + strings.Repeat("ab", 32) + `"}`)
	f.Add("{}")
	f.Add("\n\n{\"fingerprint\":null}")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, b := range l.Bridges() {
			got, ok := l.Lookup(b.Fingerprint)
			if !ok || got != b || b.Host == "" {
				t.Fatalf("inconsistent entry %+v", b)
			}
		}
	})
}
