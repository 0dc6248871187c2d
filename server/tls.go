package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/internal/acmecert"
)

// ACMECacheDirName is the directory under the PT state directory where ACME
// certificates are kept, as the reference names it.
const ACMECacheDirName = "snowflake-certificate-cache"

// certCheckInterval is how often certificate files are checked for renewal.
const certCheckInterval = time.Minute

// newTLSConfig is the TLS configuration every mode shares: TLS 1.2 or later
// and HTTP/1.1 only, since WebSockets are upgraded from HTTP/1.1.
func newTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: getCert,
	}
}

// CertFiles serves a certificate and key from PEM files, reloading them when
// they change (at most once a minute) so that renewals by an outside tool
// need no restart.
type CertFiles struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lastCheck time.Time
}

// LoadCertFiles loads certFile and keyFile, failing if they do not hold a
// matching certificate and key.
func LoadCertFiles(certFile, keyFile string, logger *slog.Logger) (*CertFiles, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.lastCheck = time.Now()
	return c, nil
}

func (c *CertFiles) load() error {
	certInfo, err := os.Stat(c.certFile)
	if err != nil {
		return fmt.Errorf("server: certificate: %w", err)
	}
	keyInfo, err := os.Stat(c.keyFile)
	if err != nil {
		return fmt.Errorf("server: key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("server: loading %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert = &cert
	c.certMod = certInfo.ModTime()
	c.keyMod = keyInfo.ModTime()
	return nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.lastCheck) >= certCheckInterval {
		c.lastCheck = time.Now()
		c.reloadIfChanged()
	}
	return c.cert, nil
}

// reloadIfChanged reloads the files if either modification time moved. A
// failed reload (say, a half-written file) keeps the old certificate.
func (c *CertFiles) reloadIfChanged() {
	ci, err1 := os.Stat(c.certFile)
	ki, err2 := os.Stat(c.keyFile)
	if err1 != nil || err2 != nil {
		c.logger.Warn("cannot check certificate files", "err", errors.Join(err1, err2))
		return
	}
	if ci.ModTime().Equal(c.certMod) && ki.ModTime().Equal(c.keyMod) {
		return
	}
	old := c.cert
	if err := c.load(); err != nil {
		c.cert = old
		c.logger.Warn("keeping the old certificate", "err", err)
		return
	}
	c.logger.Info("reloaded certificate", "file", c.certFile)
}

// Hostnames returns the DNS names in the certificate, for SMETHOD ARGS.
func (c *CertFiles) Hostnames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cert.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.cert.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf.DNSNames
}

// TLSConfig returns a server TLS configuration using these files.
func (c *CertFiles) TLSConfig() *tls.Config {
	return newTLSConfig(c.GetCertificate)
}

// ACME obtains certificates from Let's Encrypt for fixed hostnames, caching
// them under stateDir/ACMECacheDirName (the shared internal/acmecert setup).
type ACME struct {
	*acmecert.Certs
}

// NewACME prepares ACME for hostnames (at least one). email, if not empty,
// is given to the CA for expiry notices.
func NewACME(hostnames []string, email, stateDir string) (*ACME, error) {
	c, err := acmecert.New(acmecert.Config{
		Hostnames: hostnames, Email: email,
		CacheDir: filepath.Join(stateDir, ACMECacheDirName),
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return &ACME{c}, nil
}

// TLSConfig returns a server TLS configuration for WebSockets (HTTP/1.1)
// that also answers TLS-ALPN-01 challenges.
func (a *ACME) TLSConfig() *tls.Config { return a.Certs.TLSConfig("http/1.1") }

// HTTPServer (from acmecert.Certs) returns a server for HTTP-01 challenges
// on addr (port 80 of the bridge address, in the reference's layout).

// ACMEChallengeAddr returns the address for the HTTP-01 responder: port 80
// of ip, or of all interfaces if ip is unspecified.
func ACMEChallengeAddr(ip net.IP) string {
	host := ""
	if ip != nil && !ip.IsUnspecified() {
		host = ip.String()
	}
	return net.JoinHostPort(host, "80")
}
