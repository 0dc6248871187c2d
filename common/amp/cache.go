package amp

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"

	"golang.org/x/net/idna"
)

// CacheURL rewrites pubURL to its form under the AMP cache at cacheURL, with
// content type contentType ("c" for documents).
//
// Following the AMP cache URL format
// (https://amp.dev/documentation/guides-and-tutorials/learn/amp-caches-and-cors/amp-cache-urls/),
// the result is on host DomainPrefix(publisher host) + "." + cache host (with
// the cache's port), with path <cache path>/<contentType>[/s]/<publisher
// host><publisher path>, "/s" marking an https publisher, and the publisher's
// query and fragment. The cache URL's scheme and userinfo are kept. The
// publisher URL must be http or https with a host, no userinfo and no port
// other than the scheme's default; the cache URL may not have a query or a
// fragment, since the publisher's take their place.
func CacheURL(pubURL, cacheURL *url.URL, contentType string) (*url.URL, error) {
	if contentType == "" {
		return nil, errors.New("amp: empty content type")
	}
	var https bool
	switch pubURL.Scheme {
	case "http":
	case "https":
		https = true
	default:
		return nil, fmt.Errorf("amp: publisher URL scheme %q is not http or https", pubURL.Scheme)
	}
	if pubURL.User != nil {
		return nil, errors.New("amp: publisher URL has userinfo")
	}
	if port := pubURL.Port(); port != "" && !(port == "80" && !https) && !(port == "443" && https) {
		return nil, fmt.Errorf("amp: publisher URL port %q is not the default for %s", port, pubURL.Scheme)
	}
	host := pubURL.Hostname()
	if host == "" {
		return nil, errors.New("amp: publisher URL has no host")
	}
	if cacheURL.RawQuery != "" {
		return nil, errors.New("amp: cache URL has a query")
	}
	if cacheURL.Fragment != "" || cacheURL.RawFragment != "" {
		return nil, errors.New("amp: cache URL has a fragment")
	}

	// The path is assembled in escaped form, so that escapes in either
	// URL survive, then cleaned: an empty element would otherwise merge
	// with its neighbours.
	elems := []string{"/", cacheURL.EscapedPath(), url.PathEscape(contentType)}
	if https {
		elems = append(elems, "s")
	}
	elems = append(elems, url.PathEscape(host), pubURL.EscapedPath())
	rawPath := path.Join(elems...)
	unescaped, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, fmt.Errorf("amp: %w", err)
	}

	resultHost := DomainPrefix(host) + "." + cacheURL.Hostname()
	if port := cacheURL.Port(); port != "" {
		resultHost = net.JoinHostPort(resultHost, port)
	}
	return &url.URL{
		Scheme:      cacheURL.Scheme,
		User:        cacheURL.User,
		Host:        resultHost,
		Path:        unescaped,
		RawPath:     rawPath,
		RawQuery:    pubURL.RawQuery,
		Fragment:    pubURL.Fragment,
		RawFragment: pubURL.RawFragment,
	}, nil
}

// maxLabel is the longest DNS label.
const maxLabel = 63

// DomainPrefix returns the AMP cache subdomain label for domain.
//
// It is the "basic" label of the AMP cache URL format when that is a valid
// DNS label (letters, digits and hyphens, at most 63 of them), otherwise the
// "fallback" label derived from a hash of the domain. For example
// "snowflake-broker.torproject.net" becomes
// "snowflake--broker-torproject-net".
func DomainPrefix(domain string) string {
	if p, err := domainPrefixBasic(domain); err == nil && isLabel(p) {
		return p
	}
	return domainPrefixFallback(domain)
}

// domainPrefixBasic is the basic algorithm: Punycode-decode, double the
// hyphens, turn dots into hyphens, wrap in "0-" and "-0" if the third and
// fourth characters are hyphens (which would read as an IDNA "xn--" label),
// Punycode-encode. No IDNA mapping (case folding, normalisation) is applied,
// as in the reference tools.
func domainPrefixBasic(domain string) (string, error) {
	u, err := idna.ToUnicode(domain)
	if err != nil {
		return "", err
	}
	u = strings.ReplaceAll(u, "-", "--")
	u = strings.ReplaceAll(u, ".", "-")
	if len(u) >= 4 && u[2] == '-' && u[3] == '-' {
		u = "0-" + u + "-0"
	}
	return idna.ToASCII(u)
}

// fallbackEncoding is lowercase base32 without padding.
var fallbackEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// domainPrefixFallback is the fallback algorithm: the SHA-256 of the domain's
// UTF-8 bytes (which is what AMP's own tools hash, whatever their comments
// say), in lowercase base32 without padding: 52 characters.
func domainPrefixFallback(domain string) string {
	sum := sha256.Sum256([]byte(domain))
	return fallbackEncoding.EncodeToString(sum[:])
}

// isLabel reports whether s is a usable DNS label: 1 to 63 letters, digits
// and hyphens.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > maxLabel {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
