package rendezvous

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/snowfall-pt/snowfall/common/amp"
)

// AMP is the rendezvous through an AMP cache: the poll travels in the path of
// a GET to the broker's /amp/client/ endpoint, rewritten to the cache's URL
// form, and the reply comes back armored in an AMP HTML page. It also works
// without a cache (a plain GET to the broker).
type AMP struct {
	broker *url.URL
	cache  *url.URL // nil: no cache
	fronts []string
	client *http.Client
}

// NewAMP returns the AMP method for the broker at brokerURL through the AMP
// cache at cacheURL (empty means no cache). fronts and rt are as for NewHTTP.
func NewAMP(brokerURL, cacheURL string, fronts []string, rt http.RoundTripper) (*AMP, error) {
	broker, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return nil, err
	}
	var cache *url.URL
	if cacheURL != "" {
		if cache, err = ParseCacheURL(cacheURL); err != nil {
			return nil, err
		}
	}
	if rt == nil {
		if rt, err = NewTransport(TransportOptions{}); err != nil {
			return nil, err
		}
	}
	return &AMP{broker: broker, cache: cache, fronts: cleanFronts(fronts), client: newClient(rt)}, nil
}

// ParseCacheURL parses an AMP cache URL (an absolute https or http URL).
func ParseCacheURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid AMP cache URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("invalid AMP cache URL %q: need an absolute http(s) URL", s)
	}
	return u, nil
}

// RequestURL returns the URL that carries poll: the publisher URL under the
// broker, rewritten for the cache when there is one.
func (a *AMP) RequestURL(poll []byte) (*url.URL, error) {
	pub := a.broker.ResolveReference(&url.URL{Path: "amp/client/" + amp.EncodePath(poll)})
	if a.cache == nil {
		return pub, nil
	}
	u, err := amp.CacheURL(pub, a.cache, "c")
	if err != nil {
		return nil, fmt.Errorf("building AMP cache URL: %w", err)
	}
	return u, nil
}

// Exchange implements Method.
func (a *AMP) Exchange(ctx context.Context, poll []byte) ([]byte, error) {
	u, err := a.RequestURL(poll)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	front(req, a.fronts)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("AMP cache request: %w", err)
	}
	defer resp.Body.Close()
	// A cache that has no usable copy answers with a "silent redirect"
	// (a Location header, even with status 200): treat it as failure.
	if err := checkResponse(resp); err != nil {
		return nil, err
	}
	html, err := readLimited(resp.Body, MaxResponseSize)
	if err != nil {
		return nil, err
	}
	return DecodeArmor(html)
}

// DecodeArmor extracts the payload of an AMP-armored HTML page.
func DecodeArmor(html []byte) ([]byte, error) {
	payload, err := readLimited(amp.NewArmorDecoder(bytes.NewReader(html)), MaxResponseSize)
	if err != nil {
		return nil, fmt.Errorf("decoding AMP armor: %w", err)
	}
	return payload, nil
}
