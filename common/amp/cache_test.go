package amp

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// Expected values below are those asserted by the reference
// implementation's tests and the AMP cache URL documentation.

func TestDomainPrefixBasic(t *testing.T) {
	for _, tc := range []struct{ domain, want string }{
		{"", ""},
		{"xn--", ""},
		{"...", "---"},
		// No IDNA mapping: case and normalisation are kept.
		{"b\u00fccher.de", "xn--bcher-de-65a"},
		{"B\u00fccher.de", "xn--Bcher-de-65a"},
		{"bu\u0308cher.de", "xn--bucher-de-hkf"},
		// IDNA 2003/2008 deviations.
		{"faß.de", "xn--fa-de-mqa"},
		{"βόλοσ.com", "xn---com-4ld8c2a6a8e"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)}, // too long; DomainPrefix falls back
		{"example.com", "example-com"},
		{"foo.example.com", "foo-example-com"},
		{"foo-example.com", "foo--example-com"},
		{"xn--57hw060o.com", "xn---com-p33b41770a"},
		{"\u26a1\U0001f60a.com", "xn---com-p33b41770a"},
		{"en-us.example.com", "0-en--us-example-com-0"},
		{"snowflake-broker.torproject.net", "snowflake--broker-torproject-net"},
	} {
		got, err := domainPrefixBasic(tc.domain)
		if err != nil || got != tc.want {
			t.Errorf("%+q: got (%+q, %v), want %+q", tc.domain, got, err, tc.want)
		}
	}
	if got, err := domainPrefixBasic("xn---"); err == nil {
		t.Errorf("xn---: got %q, want an error", got)
	}
}

func TestDomainPrefixFallback(t *testing.T) {
	for _, tc := range []struct{ domain, want string }{
		{"", "4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq"},
		{"example.com", "un42n5xov642kxrxrqiyanhcoupgql5lt4wtbkyt2ijflbwodfdq"},
	} {
		if got := domainPrefixFallback(tc.domain); got != tc.want {
			t.Errorf("%+q: got %+q, want %+q", tc.domain, got, tc.want)
		}
	}
}

func TestDomainPrefix(t *testing.T) {
	for _, tc := range []struct{ domain, want string }{
		{"snowflake-broker.torproject.net", "snowflake--broker-torproject-net"},
		{"example.com", "example-com"},
		{"en-us.example.com", "0-en--us-example-com-0"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{"", "4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq"},
		// Checked by the reference against AMP's own tool: the basic
		// labels are longer than 63 characters.
		{strings.Repeat("0", 60) + ".com", "stejanx4hsijaoj4secyecy4nvqodk56kw72whwcmvdbtucibf5a"},
		{strings.Repeat("0", 59) + "a.com", "jdcvbsorpnc3hcjrhst56nfm6ymdpovlawdbm2efyxpvlt4cpbya"},
		{strings.Repeat("0", 59) + "\u03bb.com", "qhzqeumjkfpcpuic3vqruyjswcr7y7gcm3crqyhhywvn3xrhchfa"},
	} {
		if got := DomainPrefix(tc.domain); got != tc.want {
			t.Errorf("%+q: got %+q, want %+q", tc.domain, got, tc.want)
		}
	}
	// Whatever the input, the result is one valid DNS label.
	strict := idna.New(idna.VerifyDNSLength(true), idna.StrictDomainName(true))
	for _, domain := range []string{
		"example.com", "\u0314example.com", strings.Repeat("a", 63), strings.Repeat("a", 64),
		"xn--57hw060o.com", "a b c", "xn---", "...", "", "a_b.example", "é" + strings.Repeat("x", 70),
	} {
		got := DomainPrefix(domain)
		if strings.Contains(got, ".") || !isLabel(got) {
			t.Errorf("%+q -> %+q is not a label", domain, got)
		}
		if _, err := strict.ToUnicode(got); err != nil {
			t.Errorf("%+q -> %+q: %v", domain, got, err)
		}
	}
}

func TestCacheURL(t *testing.T) {
	for _, tc := range []struct{ pub, cache, ct, want string }{
		{"http://example.com/", "https://amp.cache/", "c", "https://example-com.amp.cache/c/example.com"},
		{"http://example.com", "https://amp.cache/", "c", "https://example-com.amp.cache/c/example.com"},
		{"https://example.com/", "https://amp.cache/", "c", "https://example-com.amp.cache/c/s/example.com"},
		{"http://example.com/", "https://amp.cache/", "/", "https://example-com.amp.cache/%2F/example.com"},
		{"http://example.com/my%2Fpath/index.html?a=1#fragment", "https://amp.cache/", "c",
			"https://example-com.amp.cache/c/example.com/my%2Fpath/index.html?a=1#fragment"},
		{"http://example.com", "http://cache%2Fuser:cache%40pass@amp.cache:123/with/../../path/..%2f../", "c",
			"http://cache%2Fuser:cache%40pass@example-com.amp.cache:123/path/..%2f../c/example.com"},
		{"http://example.com:80/", "https://amp.cache/", "c", "https://example-com.amp.cache/c/example.com"},
		{"https://example.com:443/", "https://amp.cache/", "c", "https://example-com.amp.cache/c/s/example.com"},
		{"http://example.com/", "https://amp.cache/?", "c", "https://example-com.amp.cache/c/example.com"},
		{"https://example.com/amp_document.html", "https://cdn.ampproject.org/", "c",
			"https://example-com.cdn.ampproject.org/c/s/example.com/amp_document.html"},
		{"http://example.com/logo.png", "https://cdn.ampproject.org/", "i",
			"https://example-com.cdn.ampproject.org/i/example.com/logo.png"},
		{"https://example.com/g?value=Hello%20World", "https://cdn.ampproject.org/", "c",
			"https://example-com.cdn.ampproject.org/c/s/example.com/g?value=Hello%20World"},
		// What a Snowflake client sends (PROTOCOL.md §4.2).
		{"https://snowflake-broker.torproject.net/amp/client/0vu6vQ3RN2KF6/MS4wCnt9", "https://cdn.ampproject.org/", "c",
			"https://snowflake--broker-torproject-net.cdn.ampproject.org/c/s/snowflake-broker.torproject.net/amp/client/0vu6vQ3RN2KF6/MS4wCnt9"},
	} {
		got, err := CacheURL(mustParse(t, tc.pub), mustParse(t, tc.cache), tc.ct)
		if err != nil {
			t.Errorf("%s %s %s: %v", tc.pub, tc.cache, tc.ct, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("%s %s %s:\n got %s\nwant %s", tc.pub, tc.cache, tc.ct, got, tc.want)
		}
	}
	for _, tc := range []struct{ pub, cache, ct string }{
		{"http://example.com/", "https://amp.cache/", ""},          // empty content type
		{"http:///index.html", "https://amp.cache/", "c"},          // no host
		{"//example.com/", "https://amp.cache/", "c"},              // no scheme
		{"ftp://example.com/", "https://amp.cache/", "c"},          // other scheme
		{"http://example.com:443/", "https://amp.cache/", "c"},     // port not the default
		{"https://example.com:8443/", "https://amp.cache/", "c"},   // port not the default
		{"http://user@example.com/", "https://amp.cache/", "c"},    // userinfo
		{"http://user:pw@example.com/", "https://amp.cache/", "c"}, // userinfo
		{"http://example.com/", "https://amp.cache/?a=1", "c"},     // cache query
		{"http://example.com/", "https://amp.cache/#frag", "c"},    // cache fragment
	} {
		if got, err := CacheURL(mustParse(t, tc.pub), mustParse(t, tc.cache), tc.ct); err == nil {
			t.Errorf("%s %s %q: got %s, want an error", tc.pub, tc.cache, tc.ct, got)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
