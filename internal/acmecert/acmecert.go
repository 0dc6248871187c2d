// Package acmecert obtains TLS certificates from Let's Encrypt (ACME) for a
// fixed list of hostnames. It is the one ACME setup of the broker, the NAT
// probe service and the bridge: certificates cached in a directory,
// TLS-ALPN-01 answered on the TLS port, and an HTTP-01 responder for port
// 80 whose connections are bounded in time like every other server's.
package acmecert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Timeouts and bounds of the HTTP-01 responder. A challenge request is a
// single small GET, so anything slower or bigger is an idle or hostile
// connection.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 10 * time.Second
	MaxHeaderBytes    = 8 << 10
)

// ErrNoHostnames reports a configuration without any hostname.
var ErrNoHostnames = errors.New("acmecert: at least one hostname is needed")

// Config configures Certs.
type Config struct {
	// Hostnames are the only names certificates are requested for.
	Hostnames []string
	// Email, if not empty, is given to the CA for expiry notices.
	Email string
	// CacheDir keeps the account key and certificates; it is created
	// (mode 0700) if missing.
	CacheDir string
}

// Certs obtains and renews certificates.
type Certs struct {
	// Manager is the underlying autocert manager.
	Manager   *autocert.Manager
	hostnames []string
}

// ParseHostnames splits a comma-separated flag value, dropping blanks.
func ParseHostnames(list string) []string {
	var out []string
	for h := range strings.SplitSeq(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// New checks cfg, creates the cache directory and returns Certs.
func New(cfg Config) (*Certs, error) {
	if len(cfg.Hostnames) == 0 {
		return nil, ErrNoHostnames
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("acmecert: no cache directory")
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acmecert: certificate cache: %w", err)
	}
	return &Certs{
		Manager: &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(cfg.Hostnames...),
			Email:      cfg.Email,
			Cache:      autocert.DirCache(cfg.CacheDir),
		},
		hostnames: slices.Clone(cfg.Hostnames),
	}, nil
}

// Hostnames returns the configured hostnames.
func (c *Certs) Hostnames() []string { return slices.Clone(c.hostnames) }

// TLSConfig returns a server configuration (TLS 1.2 or later) offering the
// application protocols nextProtos and answering TLS-ALPN-01 challenges.
func (c *Certs) TLSConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     append(slices.Clone(nextProtos), acme.ALPNProto),
		GetCertificate: c.Manager.GetCertificate,
	}
}

// HTTPServer returns the HTTP-01 responder for addr; other requests are
// redirected to HTTPS.
func (c *Certs) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           c.Manager.HTTPHandler(nil),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// ServeHTTP01 listens on addr (":80" normally) and answers HTTP-01
// challenges there until ctx is done. It fails only if it cannot listen;
// later errors go to log.
func (c *Certs) ServeHTTP01(ctx context.Context, addr string, log *slog.Logger) error {
	srv := c.HTTPServer(addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("acmecert: HTTP-01 responder: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	context.AfterFunc(ctx, func() { srv.Close() })
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("ACME HTTP-01 responder stopped", "err", err)
		}
	}()
	return nil
}
