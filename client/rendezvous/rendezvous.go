// Package rendezvous carries a Snowflake client's poll (an SDP offer) to the
// broker and brings back the broker's reply, either as an HTTPS POST that may
// be domain-fronted or as a GET through an AMP cache (PROTOCOL.md §4.1–§4.3).
//
// A Method only moves bytes: encoding the poll and decoding the reply belong
// to package messages. Every Method refuses redirects, limits replies to
// MaxResponseSize bytes and ignores the environment's HTTP proxy settings.
package rendezvous

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/client/utlsrt"
)

// MaxResponseSize is the largest broker reply accepted, in bytes.
const MaxResponseSize = 100000

// ResponseHeaderTimeout bounds the wait for a broker's response headers.
const ResponseHeaderTimeout = 15 * time.Second

// Method is a way of exchanging one poll with the broker.
type Method interface {
	// Exchange sends an encoded client poll request and returns the
	// broker's encoded reply.
	Exchange(ctx context.Context, poll []byte) ([]byte, error)
}

// Errors returned by Exchange, to be tested with errors.Is.
var (
	// ErrStatus is a reply whose HTTP status is not 200 (see StatusError).
	ErrStatus = errors.New("unexpected HTTP status, no answer")
	// ErrTooLarge is a reply longer than MaxResponseSize.
	ErrTooLarge = errors.New("broker reply is too large")
	// ErrRedirect is a reply that tries to redirect the client.
	ErrRedirect = errors.New("broker reply is a redirect")
)

// StatusError is a reply with an HTTP status other than 200.
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	return fmt.Sprintf("unexpected HTTP status %d, no answer", e.Code)
}

// Is makes errors.Is(err, ErrStatus) true for every StatusError.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// TransportOptions configures NewTransport.
type TransportOptions struct {
	// UTLSImitate names a browser ClientHello to imitate (see
	// utlsrt.ParseClientHelloID); empty means utlsrt.DefaultName (the
	// captured Chromium profile) and "none" Go's own TLS, for debugging.
	UTLSImitate string
	// UTLSRemoveSNI leaves SNI out of the uTLS ClientHello.
	UTLSRemoveSNI bool
	// DialContext opens TCP connections (for example through a SOCKS5
	// proxy); nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies the broker's (or front's) certificate; nil means
	// the system roots, which honour SSL_CERT_FILE and SSL_CERT_DIR.
	RootCAs *x509.CertPool
	// ResponseHeaderTimeout overrides ResponseHeaderTimeout when positive.
	ResponseHeaderTimeout time.Duration
}

// NewTransport returns the http.RoundTripper for broker traffic described by
// opts. It never uses the environment's proxy settings.
func NewTransport(opts TransportOptions) (http.RoundTripper, error) {
	headerTimeout := opts.ResponseHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = ResponseHeaderTimeout
	}
	dial := opts.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	name := opts.UTLSImitate
	if name == "" {
		name = utlsrt.DefaultName
	}
	id, err := utlsrt.ParseClientHelloID(name)
	if err != nil {
		return nil, err
	}
	if id != utlsrt.HelloNone {
		rt, err := utlsrt.New(utlsrt.Options{
			ID:                    id,
			RemoveSNI:             opts.UTLSRemoveSNI,
			DialContext:           dial,
			RootCAs:               opts.RootCAs,
			ResponseHeaderTimeout: headerTimeout,
		})
		if err != nil {
			return nil, err
		}
		return rt, nil
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: opts.RootCAs},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}, nil
}

// newClient wraps rt in an http.Client that never follows redirects.
func newClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// front points req at a front chosen uniformly at random from fronts: the
// connection (and SNI) go to the front while the Host header keeps naming
// the real destination.
func front(req *http.Request, fronts []string) {
	if len(fronts) == 0 {
		return
	}
	req.Host = req.URL.Host
	req.URL.Host = fronts[rand.IntN(len(fronts))]
}

// checkResponse rejects redirects and non-200 replies.
func checkResponse(resp *http.Response) error {
	if resp.Header.Get("Location") != "" || (resp.StatusCode >= 300 && resp.StatusCode < 400) {
		return fmt.Errorf("%w (HTTP %d)", ErrRedirect, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// readLimited reads all of r, failing with ErrTooLarge beyond limit bytes.
func readLimited(r io.Reader, limit int) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("reading broker reply: %w", err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// cleanFronts drops empty entries and surrounding spaces.
func cleanFronts(fronts []string) []string {
	var out []string
	for _, f := range fronts {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
