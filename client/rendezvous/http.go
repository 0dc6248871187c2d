package rendezvous

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// HTTP is the direct rendezvous: a POST of the poll to the broker's "client"
// endpoint, optionally domain-fronted.
type HTTP struct {
	url    *url.URL
	fronts []string
	client *http.Client
}

// NewHTTP returns the HTTP method for the broker at brokerURL. The request
// goes to brokerURL resolved against the relative path "client" (so
// https://b/ and https://b/x both give https://b/client, and https://b/a/x
// gives https://b/a/client). When fronts is not empty every request connects
// to one of them, chosen at random, with the broker's host in the Host
// header. rt carries the requests; nil means NewTransport with defaults.
func NewHTTP(brokerURL string, fronts []string, rt http.RoundTripper) (*HTTP, error) {
	u, err := ClientURL(brokerURL)
	if err != nil {
		return nil, err
	}
	if rt == nil {
		if rt, err = NewTransport(TransportOptions{}); err != nil {
			return nil, err
		}
	}
	return &HTTP{url: u, fronts: cleanFronts(fronts), client: newClient(rt)}, nil
}

// ClientURL returns the URL of the broker's client endpoint for brokerURL.
func ClientURL(brokerURL string) (*url.URL, error) {
	base, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return nil, err
	}
	return base.ResolveReference(&url.URL{Path: "client"}), nil
}

// ParseBrokerURL parses an absolute http or https URL with a host.
func ParseBrokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid broker URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("invalid broker URL %q: scheme must be https or http", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid broker URL %q: no host", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("invalid broker URL %q: user information is not allowed", s)
	}
	return u, nil
}

// Exchange implements Method.
func (h *HTTP) Exchange(ctx context.Context, poll []byte) ([]byte, error) {
	u := *h.url
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(poll))
	if err != nil {
		return nil, err
	}
	front(req, h.fronts)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broker request: %w", err)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp); err != nil {
		return nil, err
	}
	return readLimited(resp.Body, MaxResponseSize)
}
