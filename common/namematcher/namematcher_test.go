package namematcher

import "testing"

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		exact   bool
		suffix  string
	}{
		{"", false, ""},
		{"$", false, ""},
		{"^", true, ""},
		{"^$", true, ""},
		{"snowflake.torproject.net$", false, "snowflake.torproject.net"},
		{"snowflake.torproject.net", false, "snowflake.torproject.net"},
		{"^snowflake.torproject.net$", true, "snowflake.torproject.net"},
		{"^127.0.0.1$", true, "127.0.0.1"},
		{"Snowflake.TorProject.NET$", false, "snowflake.torproject.net"},
		{"torproject.net.$", false, "torproject.net"}, // absolute name
	} {
		m := New(tc.pattern)
		if m.Exact() != tc.exact || m.Suffix() != tc.suffix {
			t.Errorf("New(%q) = exact %v suffix %q", tc.pattern, m.Exact(), m.Suffix())
		}
	}
}

func TestIsMember(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"snowflake.torproject.net$", "snowflake.torproject.net", true},
		{"snowflake.torproject.net$", "01.snowflake.torproject.net", true},
		{"snowflake.torproject.net$", "a.b.snowflake.torproject.net", true},
		{"snowflake.torproject.net$", "SNOWFLAKE.torproject.NET", true},
		{"snowflake.torproject.net$", "snowflake.torproject.net.", true},
		// A label boundary is required, unlike the reference.
		{"snowflake.torproject.net$", "evil-snowflake.torproject.net", false},
		{"snowflake.torproject.net$", "evilsnowflake.torproject.net", false},
		{"snowflake.torproject.net$", "torproject.net", false},
		{"snowflake.torproject.net$", "snowflake.torproject.net.evil.com", false},
		{"snowflake.torproject.net", "02.snowflake.torproject.net", true},
		{"torproject.net$", "snowflake.torproject.net", true},
		{"project.net", "snowflake.torproject.net", false},
		{".torproject.net$", "snowflake.torproject.net", true},
		{"torproject.net.$", "snowflake.torproject.net", true},
		// Exact patterns.
		{"^snowflake.torproject.net$", "snowflake.torproject.net", true},
		{"^snowflake.torproject.net$", "Snowflake.Torproject.Net.", true},
		{"^snowflake.torproject.net$", "01.snowflake.torproject.net", false},
		{"^snowflake.torproject.net", "snowflake.torproject.net", true},
		{"^127.0.0.1$", "127.0.0.1", true},
		{"^127.0.0.1$", "127.0.0.10", false},
		{"^127.0.0.1$", "1127.0.0.1", false},
		{"^127.0.0.1$", "x.127.0.0.1", false},
		// The empty pattern matches every name.
		{"", "snowflake.torproject.net", true},
		{"", "127.0.0.1", true},
		{"", "", true},
		{"$", "anything.example", true},
		{"^", "anything.example", false},
		{"^", "", true},
		{"example.net", "", false},
	} {
		if got := New(tc.pattern).IsMember(tc.host); got != tc.want {
			t.Errorf("New(%q).IsMember(%q) = %v", tc.pattern, tc.host, got)
		}
	}
}

func TestIsSupersetOf(t *testing.T) {
	for _, tc := range []struct {
		proxy, broker string
		want          bool
	}{
		{"snowflake.torproject.net$", "snowflake.torproject.net$", true},
		{"snowflake.torproject.net$", "snowflake.torproject.net", true},
		{"^127.0.0.1$", "^127.0.0.1$", true},
		{"", "snowflake.torproject.net$", true},
		{"", "^127.0.0.1$", true},
		{"", "", true},
		{"$", "", true},
		{"torproject.net$", "snowflake.torproject.net$", true},
		{"torproject.net$", "^snowflake.torproject.net$", true},
		{"snowflake.torproject.net$", "^snowflake.torproject.net$", true},
		{"project.net", "snowflake.torproject.net", false},
		{"snowflake.torproject.net$", "torproject.net$", false},
		{"snowflake.torproject.net$", "", false},
		{"^snowflake.torproject.net$", "snowflake.torproject.net$", false},
		{"^snowflake.torproject.net$", "^01.snowflake.torproject.net$", false},
		{"^127.0.0.1$", "", false},
		{"^", "", false},
		{"^127.0.0.1$", "127.0.0.1$", false},
		{".torproject.net", "torproject.net", false},
		{"torproject.net", ".torproject.net", true},
		{"Torproject.NET$", "snowflake.torproject.net$", true},
	} {
		if got := New(tc.proxy).IsSupersetOf(New(tc.broker)); got != tc.want {
			t.Errorf("proxy %q ⊇ broker %q = %v, want %v", tc.proxy, tc.broker, got, tc.want)
		}
	}
}

// FuzzMatcher checks that New and IsMember never panic and that IsSupersetOf
// is sound: a name the broker's pattern admits is admitted by any proxy
// pattern said to be a superset of it.
func FuzzMatcher(f *testing.F) {
	f.Add("snowflake.torproject.net$", "torproject.net$", "01.snowflake.torproject.net")
	f.Add("^127.0.0.1$", "", "127.0.0.1")
	f.Add("", "^x$", "evil-snowflake.torproject.net")
	f.Add(".a.", "a", "b.a.")
	f.Fuzz(func(t *testing.T, broker, proxy, host string) {
		b, p := New(broker), New(proxy)
		if b.IsMember(host) && p.IsSupersetOf(b) && !p.IsMember(host) {
			t.Fatalf("%q ⊇ %q, but only the latter admits %q", proxy, broker, host)
		}
		if !p.IsSupersetOf(p) {
			t.Fatalf("%q is not a superset of itself", proxy)
		}
		if !p.Exact() && p.Suffix() != "" && !p.IsMember(p.Suffix()) {
			t.Fatalf("%q does not admit its own suffix", proxy)
		}
	})
}
