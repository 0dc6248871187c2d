package client

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/common/messages"
)

func TestWithArgs(t *testing.T) {
	base := Config{
		BrokerURL:  "https://broker.example/",
		Fronts:     []string{"cli-front.example"},
		ICEServers: []string{"stun:cli.example:3478"},
		MaxPeers:   1,
	}
	tests := []struct {
		name  string
		args  map[string][]string
		check func(Config) bool
		err   bool
	}{
		{"url", map[string][]string{"url": {"https://other.example/x/"}},
			func(c Config) bool { return c.BrokerURL == "https://other.example/x/" }, false},
		{"front", map[string][]string{"front": {"a.example, b.example"}},
			func(c Config) bool { return reflect.DeepEqual(c.Fronts, []string{"a.example", "b.example"}) }, false},
		{"fronts wins", map[string][]string{"front": {"a.example"}, "fronts": {"c.example,d.example"}},
			func(c Config) bool { return reflect.DeepEqual(c.Fronts, []string{"c.example", "d.example"}) }, false},
		{"empty fronts ignored", map[string][]string{"front": {"a.example"}, "fronts": {""}},
			func(c Config) bool { return reflect.DeepEqual(c.Fronts, []string{"a.example"}) }, false},
		{"ampcache", map[string][]string{"ampcache": {"https://cdn.ampproject.org/"}},
			func(c Config) bool { return c.AMPCacheURL == "https://cdn.ampproject.org/" }, false},
		{"ice", map[string][]string{"ice": {"stun:a:1,stun:b:2"}},
			func(c Config) bool { return reflect.DeepEqual(c.ICEServers, []string{"stun:a:1", "stun:b:2"}) }, false},
		{"max", map[string][]string{"max": {"3"}}, func(c Config) bool { return c.MaxPeers == 3 }, false},
		{"fingerprint", map[string][]string{"fingerprint": {"2b280b23e1107bb62abfc40ddcc8824814f80a72"}},
			func(c Config) bool { return c.BridgeFingerprint == "2B280B23E1107BB62ABFC40DDCC8824814F80A72" }, false},
		{"utls", map[string][]string{"utls-imitate": {"HelloChrome_Auto"}, "utls-nosni": {"YES"}},
			func(c Config) bool { return c.UTLSImitate == "HelloChrome_Auto" && c.UTLSRemoveSNI }, false},
		{"nosni false", map[string][]string{"utls-nosni": {"false"}}, func(c Config) bool { return !c.UTLSRemoveSNI }, false},
		{"unknown key ignored", map[string][]string{"foo": {"bar"}}, func(c Config) bool { return c.BrokerURL == base.BrokerURL }, false},
		{"bad url", map[string][]string{"url": {"ftp://x/"}}, nil, true},
		{"relative url", map[string][]string{"url": {"broker.example"}}, nil, true},
		{"bad max", map[string][]string{"max": {"many"}}, nil, true},
		{"bad fingerprint", map[string][]string{"fingerprint": {"abcd"}}, nil, true},
		{"bad utls", map[string][]string{"utls-imitate": {"hellonetscape_4"}}, nil, true},
		{"bad nosni", map[string][]string{"utls-nosni": {"maybe"}}, nil, true},
		{"bad ampcache", map[string][]string{"ampcache": {"cdn.ampproject.org"}}, nil, true},
	}
	for _, tt := range tests {
		got, err := base.WithArgs(tt.args)
		if tt.err {
			if !errors.Is(err, ErrBadConfig) {
				t.Errorf("%s: err = %v, want ErrBadConfig", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !tt.check(got) {
			t.Errorf("%s: got %+v", tt.name, got)
		}
	}
}

// TestWithArgsNoLeak: arguments of one connection must not show up in the
// next (a data race and a bug in the reference 2.5.1 client).
func TestWithArgsNoLeak(t *testing.T) {
	base := Config{BrokerURL: "https://broker.example/", Fronts: []string{"f.example"}, ICEServers: []string{"stun:s:1"}}
	saved := base.Clone()
	first, err := base.WithArgs(map[string][]string{
		"url": {"https://evil.example/"}, "front": {"x.example"}, "ice": {"stun:x:1"},
		"max": {"5"}, "fingerprint": {strings.Repeat("ab", 20)}, "utls-imitate": {"hellofirefox_auto"},
		"utls-nosni": {"yes"}, "ampcache": {"https://cache.example/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	first.Fronts[0] = "mutated"
	first.ICEServers[0] = "mutated"
	second, err := base.WithArgs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second, saved) || !reflect.DeepEqual(base, saved) {
		t.Fatalf("first connection's arguments leaked:\nbase   %+v\nsecond %+v\nwant   %+v", base, second, saved)
	}
	// A failing argument leaves nothing behind either.
	if _, err := base.WithArgs(map[string][]string{"url": {"https://x.example/"}, "max": {"x"}}); err == nil {
		t.Fatal("bad max accepted")
	}
	if !reflect.DeepEqual(base, saved) {
		t.Fatal("failed WithArgs modified the base config")
	}
}

func TestSelectICEServers(t *testing.T) {
	var warned []string
	warn := func(u string, err error) { warned = append(warned, u) }
	got := SelectICEServers([]string{"stun:a.example", " stun:b.example:19302 ", "turn:t.example", "stuns:c.example", "stun:d.example", "bogus", ""}, warn)
	// Four usable servers: keep two.
	if len(got) != 2 {
		t.Fatalf("kept %d servers: %v", len(got), got)
	}
	if !reflect.DeepEqual(warned, []string{"turn:t.example", "bogus"}) {
		t.Errorf("warned about %v", warned)
	}
	valid := map[string]bool{"stun:a.example:3478": true, "stun:b.example:19302": true, "stuns:c.example:5349": true, "stun:d.example:3478": true}
	for _, s := range got {
		if !valid[s.URLs[0]] {
			t.Errorf("unexpected server %v", s.URLs)
		}
	}
	for _, n := range []int{1, 2, 3, 5, 6} {
		var urls []string
		for i := 0; i < n; i++ {
			urls = append(urls, "stun:s"+string(rune('a'+i))+".example")
		}
		want := n
		if n > 2 {
			want = (n + 1) / 2
		}
		if got := SelectICEServers(urls, nil); len(got) != want {
			t.Errorf("%d servers: kept %d, want %d", n, len(got), want)
		}
	}
	// Shuffled: over many runs each server is sometimes first.
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		seen[SelectICEServers([]string{"stun:a:1", "stun:b:1"}, nil)[0].URLs[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("no shuffling: %v", seen)
	}
}

func TestDecodeReply(t *testing.T) {
	enc := func(r messages.ClientPollResponse) []byte {
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, err := decodeReply(enc(messages.ClientPollResponse{Answer: "ans"})); err != nil || a != "ans" {
		t.Fatalf("answer: %q %v", a, err)
	}
	_, err := decodeReply(enc(messages.ClientPollResponse{Error: messages.StrNoProxies}))
	if !errors.Is(err, ErrNoProxies) || fatal(err) {
		t.Fatalf("no proxies: %v (fatal=%v)", err, fatal(err))
	}
	_, err = decodeReply(enc(messages.ClientPollResponse{Error: messages.StrBridgeUnknown}))
	if !errors.Is(err, ErrBridgeUnknown) || !fatal(err) {
		t.Fatalf("unknown bridge: %v", err)
	}
	for _, garbage := range []string{"", "{}", "<html>", `{"answer":5}`, "\x00\xff", `{"answer":""}`} {
		if _, err := decodeReply([]byte(garbage)); !errors.Is(err, ErrBadReply) {
			t.Errorf("%q: err = %v, want ErrBadReply", garbage, err)
		}
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"answer":"{\"type\":\"answer\",\"sdp\":\"v=0\"}"}`))
	f.Add([]byte(`{"error":"no snowflake proxies currently available"}`))
	f.Add([]byte(`{"Answer":"x","ERROR":"y"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeReply(b)
		if err == nil && a == "" {
			t.Fatal("empty answer without error")
		}
	})
}

func FuzzWithArgs(f *testing.F) {
	f.Add("url", "https://b.example/", "max", "3")
	f.Add("fingerprint", "zz", "utls-nosni", "yes")
	f.Add("front", ",,,", "ice", "stun:a, turn:b")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		base := Config{BrokerURL: "https://b.example/", Fronts: []string{"f"}}
		saved := base.Clone()
		got, err := base.WithArgs(map[string][]string{k1: {v1}, k2: {v2}})
		if !reflect.DeepEqual(base, saved) {
			t.Fatal("base modified")
		}
		if err != nil {
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error not ErrBadConfig: %v", err)
			}
			return
		}
		if got.validate() != nil && got.BrokerURL != "" {
			// Every accepted argument set must form a valid config.
			t.Fatalf("accepted args give invalid config: %v", got.validate())
		}
	})
}
