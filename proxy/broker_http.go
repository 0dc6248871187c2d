//go:build !js

package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// httpPoster is the native Poster, on net/http.
type httpPoster struct{ hc *http.Client }

// HTTPPoster returns a Poster on hc; nil builds a client that honours
// proxies from the environment and gives up on a server that accepts the
// connection but does not answer within DefaultBrokerHeaderTimeout.
func HTTPPoster(hc *http.Client) Poster {
	if hc == nil {
		hc = newHTTPClient()
	}
	return httpPoster{hc}
}

func defaultPoster() Poster { return HTTPPoster(nil) }

// Post implements Poster: it returns at most MaxReplyBody bytes of a 200
// reply.
func (p httpPoster) Post(ctx context.Context, u string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxReplyBody))
		return nil, fmt.Errorf("%w: %s", ErrBrokerStatus, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	if len(data) > MaxReplyBody {
		return nil, ErrBrokerBodyTooBig
	}
	return data, nil
}

// newHTTPClient returns the client used for the broker and the NAT probe:
// proxies from the environment are honoured, and a broker that accepts the
// connection but never answers cannot stall polling.
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: DefaultBrokerHeaderTimeout,
			TLSHandshakeTimeout:   15 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
			ForceAttemptHTTP2:     true,
		},
	}
}
