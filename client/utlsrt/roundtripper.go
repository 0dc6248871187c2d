package utlsrt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	utls "github.com/refraction-networking/utls"
	"golang.org/x/net/http2"

	"github.com/snowfall-pt/snowfall/internal/fingerprint"
)

// pendingTTL bounds how long a connection dialled to learn a host's ALPN
// choice waits to be used by the first request.
const pendingTTL = time.Minute

// maxAttempts bounds the retries when a server changes its ALPN choice
// between two connections.
const maxAttempts = 5

// errProtocolChanged reports a connection whose ALPN result differs from the
// one cached for its host.
var errProtocolChanged = errors.New("utlsrt: server changed its ALPN protocol")

// Options configures a RoundTripper.
type Options struct {
	// ID is the ClientHello to imitate (see ParseClientHelloID).
	ID utls.ClientHelloID
	// RemoveSNI leaves the server_name extension out of the ClientHello.
	// Certificates are still verified against the URL's host. SNI is always
	// left out when the host is an IP address.
	RemoveSNI bool
	// DialContext opens the TCP connection; nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies server certificates; nil means the system roots
	// (which on Linux honour SSL_CERT_FILE and SSL_CERT_DIR).
	RootCAs *x509.CertPool
	// ResponseHeaderTimeout bounds the wait for response headers; zero
	// means no limit beyond the request's context.
	ResponseHeaderTimeout time.Duration
}

// RoundTripper is an http.RoundTripper that speaks TLS with a uTLS
// ClientHello. Plain http:// URLs bypass uTLS. Safe for concurrent use.
type RoundTripper struct {
	opts  Options
	plain *http.Transport // http:// URLs
	h1    *http.Transport // https:// hosts that chose http/1.1 (or no ALPN)
	h2    *http2.Transport

	// userAgent is sent when a request names none (the imitated
	// browser's; empty: Go's default).
	userAgent string

	mu      sync.Mutex
	protos  map[string]string       // addr -> "h2" or "http/1.1"
	pending map[string]*pendingConn // addr -> connection dialled to learn the protocol
}

type pendingConn struct {
	conn  *utls.UConn
	proto string
	when  time.Time
}

// New returns a RoundTripper using opts. With HelloChromium it also speaks
// HTTP/2 as the profile's browser does; it fails only if the embedded
// profile is unusable.
func New(opts Options) (*RoundTripper, error) {
	if opts.DialContext == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		opts.DialContext = d.DialContext
	}
	rt := &RoundTripper{
		opts:    opts,
		protos:  make(map[string]string),
		pending: make(map[string]*pendingConn),
	}
	rt.plain = &http.Transport{
		Proxy:                 nil,
		DialContext:           opts.DialContext,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	rt.h1 = &http.Transport{
		Proxy: nil,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return rt.dialFor(ctx, network, addr, "http/1.1")
		},
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	rt.h2 = &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return rt.dialFor(ctx, network, addr, "h2")
		},
		ReadIdleTimeout: 30 * time.Second,
		PingTimeout:     15 * time.Second,
	}
	if opts.ID == HelloChromium {
		if err := chromiumHTTP2(rt.h2); err != nil {
			return nil, err
		}
		p, err := fingerprint.Chromium()
		if err != nil {
			return nil, err
		}
		rt.userAgent = p.HTTP2.UserAgent
	}
	return rt, nil
}

// RoundTrip implements http.RoundTripper.
func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "http":
		return rt.plain.RoundTrip(req)
	case "https":
	default:
		closeBody(req)
		return nil, fmt.Errorf("utlsrt: unsupported URL scheme %q", req.URL.Scheme)
	}
	if rt.userAgent != "" && req.Header.Get("User-Agent") == "" {
		// A RoundTripper must not change the caller's request.
		r := req.Clone(req.Context())
		r.Header.Set("User-Agent", rt.userAgent)
		req = r
	}
	addr := hostPort(req)
	for attempt := 1; ; attempt++ {
		proto, err := rt.protocol(req.Context(), addr)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		var resp *http.Response
		if proto == "h2" {
			resp, err = rt.roundTripH2(req)
		} else {
			resp, err = rt.h1.RoundTrip(req)
		}
		if err == nil || !errors.Is(err, errProtocolChanged) || attempt >= maxAttempts || !rewind(req) {
			return resp, err
		}
	}
}

// roundTripH2 adds the response-header timeout that http2.Transport lacks.
func (rt *RoundTripper) roundTripH2(req *http.Request) (*http.Response, error) {
	if rt.opts.ResponseHeaderTimeout <= 0 {
		return rt.h2.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(rt.opts.ResponseHeaderTimeout, cancel)
	resp, err := rt.h2.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() && err != nil {
		cancel()
		return nil, fmt.Errorf("utlsrt: timeout awaiting response headers: %w", err)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// CloseIdleConnections closes connections that carry no request, including
// a connection dialled only to learn a host's protocol.
func (rt *RoundTripper) CloseIdleConnections() {
	rt.mu.Lock()
	for addr, p := range rt.pending {
		p.conn.Close()
		delete(rt.pending, addr)
	}
	rt.mu.Unlock()
	rt.plain.CloseIdleConnections()
	rt.h1.CloseIdleConnections()
	rt.h2.CloseIdleConnections()
}

// protocol returns the cached ALPN choice for addr, dialling once to learn it
// and keeping that connection for the first request.
func (rt *RoundTripper) protocol(ctx context.Context, addr string) (string, error) {
	rt.mu.Lock()
	proto, ok := rt.protos[addr]
	rt.mu.Unlock()
	if ok {
		return proto, nil
	}
	conn, err := rt.dialTLS(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	proto = negotiated(conn)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if old := rt.pending[addr]; old != nil {
		old.conn.Close()
	}
	rt.pending[addr] = &pendingConn{conn: conn, proto: proto, when: time.Now()}
	rt.protos[addr] = proto
	return proto, nil
}

// dialFor is the DialTLSContext of the h1 and h2 transports: it hands out the
// pre-dialled connection when it fits, or dials a new one that must agree
// with want.
func (rt *RoundTripper) dialFor(ctx context.Context, network, addr, want string) (net.Conn, error) {
	rt.mu.Lock()
	p := rt.pending[addr]
	delete(rt.pending, addr)
	rt.mu.Unlock()
	if p != nil {
		if p.proto == want && time.Since(p.when) < pendingTTL {
			return p.conn, nil
		}
		p.conn.Close()
	}
	conn, err := rt.dialTLS(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if got := negotiated(conn); got != want {
		conn.Close()
		rt.mu.Lock()
		delete(rt.protos, addr)
		rt.mu.Unlock()
		return nil, fmt.Errorf("%w: %s, expected %s", errProtocolChanged, got, want)
	}
	return conn, nil
}

// randomizedAttempts is how many handshakes dialTLS tries with a randomized
// ClientHello. uTLS's randomized specs sometimes offer a group that its own
// TLS 1.2 key exchange cannot then use ("CurvePreferences includes
// unsupported curve"); a fresh random spec avoids it.
const randomizedAttempts = 5

// dialTLS opens a TCP connection and runs the uTLS handshake on it.
func (rt *RoundTripper) dialTLS(ctx context.Context, network, addr string) (*utls.UConn, error) {
	attempts := 1
	if strings.HasPrefix(rt.opts.ID.Client, utls.HelloRandomized.Client) {
		attempts = randomizedAttempts
	}
	for i := 1; ; i++ {
		conn, err := rt.dialTLSOnce(ctx, network, addr)
		if err == nil || i >= attempts || ctx.Err() != nil || !strings.Contains(err.Error(), "unsupported curve") {
			return conn, err
		}
	}
}

func (rt *RoundTripper) dialTLSOnce(ctx context.Context, network, addr string) (*utls.UConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := rt.opts.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := &utls.Config{ServerName: host, RootCAs: rt.opts.RootCAs}
	id := rt.opts.ID
	var spec *utls.ClientHelloSpec
	if id == HelloChromium {
		if spec, err = chromiumSpec(!rt.opts.RemoveSNI && net.ParseIP(host) == nil); err != nil {
			raw.Close()
			return nil, err
		}
		id = utls.HelloCustom
	}
	conn := utls.UClient(raw, cfg, id)
	if spec != nil {
		if err := conn.ApplyPreset(spec); err != nil {
			raw.Close()
			return nil, fmt.Errorf("utlsrt: applying the Chromium profile: %w", err)
		}
	}
	if spec == nil && (rt.opts.RemoveSNI || net.ParseIP(host) != nil) {
		if err := conn.RemoveSNIExtension(); err != nil {
			raw.Close()
			return nil, err
		}
	}
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("utlsrt: TLS handshake with %s: %w", addr, err)
	}
	return conn, nil
}

func negotiated(conn *utls.UConn) string {
	if conn.ConnectionState().NegotiatedProtocol == "h2" {
		return "h2"
	}
	return "http/1.1"
}

// hostPort returns the dial address of an https request.
func hostPort(req *http.Request) string {
	port := req.URL.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(req.URL.Hostname(), port)
}

// rewind makes req's body readable again for a retry.
func rewind(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if req.GetBody == nil {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	req.Body = body
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// cancelBody releases a request's context once its response body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
